// Package simtest runs the noesis simulator on a loopback port for tests, in
// the manner of net/http/httptest.
package simtest

import (
	"net/http/httptest"
	"testing"

	"github.com/noesis-dev/noesis/router/sim"
)

// Start serves a simulator with cfg over real HTTP until the test ends (the
// test fails at once when the simulator cannot be made). It returns the
// simulator, for its counters, and its base URL (ending in /v1).
func Start(t testing.TB, cfg sim.Config) (*sim.Server, string) {
	t.Helper()
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(s.Handler())
	hs.Config.Protocols = sim.Protocols()
	hs.Start()
	t.Cleanup(hs.Close)
	return s, hs.URL + "/v1"
}
