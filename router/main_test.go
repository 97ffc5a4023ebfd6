package router_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain makes the test binary a simulator and nothing else when
// simChildEnv is set (see serveSimChild). Otherwise it runs the tests and
// checks that they leave no goroutine behind: every Router and Cache they
// make is closed (its hedges' and settles' goroutines waited for, its idle
// connections dropped), every simulator shut down.
func TestMain(m *testing.M) {
	if speed := os.Getenv(simChildEnv); speed != "" {
		serveSimChild(speed)
		return
	}
	goleak.VerifyTestMain(m)
}
