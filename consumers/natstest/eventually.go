package natstest

import (
	"testing"
	"time"
)

// Eventually polls cond every 10 ms until it holds, or fails the test after
// timeout, saying what state describes then: the one way the tests wait for
// something to happen, with a deadline instead of a sleep.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, state func() string) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, state())
		}
	}
}
