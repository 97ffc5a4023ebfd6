package proc

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/consumers/natstest"
)

// A child that handles SIGTERM stops with Term; one that ignores it is
// killed after the grace period and Term says so; Tail reads its log.
func TestTermKillAndTail(t *testing.T) {
	dir := t.TempDir()
	polite, err := Logged(dir, "polite", []string{"GREETING=hello"}, "/bin/sh", "-c", `echo "$GREETING"; trap 'echo bye; exit 0' TERM; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	// The trap is set once it has spoken.
	natstest.Eventually(t, 5*time.Second, func() bool { return strings.Contains(polite.Tail(5), "hello") },
		func() string { return fmt.Sprintf("no greeting in the log: %q", polite.Tail(5)) })
	if err := polite.Term(5 * time.Second); err != nil {
		t.Fatalf("term: %v", err)
	}
	if got := polite.Tail(1); got != "bye" {
		t.Errorf("last line %q, want bye", got)
	}

	stubborn, err := Logged(dir, "stubborn", nil, "/bin/sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, func() bool { return strings.Contains(stubborn.Tail(1), "ready") },
		func() string { return "the stubborn child never said ready" })
	if err := stubborn.Term(200 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "did not stop") {
		t.Fatalf("term of a process ignoring SIGTERM: %v, want it killed and said so", err)
	}
	select {
	case <-stubborn.Done():
	default:
		t.Fatal("killed process not done")
	}
}
