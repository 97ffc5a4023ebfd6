package sim_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The simulator's tests leave no goroutine behind: every server they start
// is closed, every Start's serving waited for.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
