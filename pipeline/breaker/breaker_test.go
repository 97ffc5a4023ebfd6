package breaker

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBreakerCycle(t *testing.T) {
	now := time.Unix(0, 0)
	var changes []string
	b := New(Config{Failures: 2, Cooldown: time.Minute, Successes: 2}, func(from, to State, cause error) {
		changes = append(changes, string(from)+"->"+string(to))
		if (to == Open) != (cause != nil) {
			t.Errorf("%s->%s with cause %v", from, to, cause)
		}
	})
	b.now = func() time.Time { return now }
	failed := errors.New("503")
	steps := []struct {
		err  error
		want State
	}{{failed, Closed}, {nil, Closed}, {failed, Closed}, {failed, Open}}
	for i, s := range steps {
		b.Record(s.err)
		if got := b.State(); got != s.want {
			t.Fatalf("step %d: state %s, want %s", i, got, s.want)
		}
	}
	if b.Allow() {
		t.Fatal("open breaker allowed a call")
	}
	if in := b.RetryIn(); in != time.Minute {
		t.Fatalf("RetryIn %s, want the whole cool-down", in)
	}
	now = now.Add(time.Minute)
	if b.State() != HalfOpen || !b.Allow() || b.RetryIn() != 0 {
		t.Fatal("breaker did not go half-open after the cool-down")
	}
	b.Record(failed)
	if b.State() != Open {
		t.Fatal("a failed probe did not reopen the breaker")
	}
	now = now.Add(time.Minute)
	b.Record(nil)
	if b.State() != HalfOpen {
		t.Fatal("one good probe closed the breaker; it needs two")
	}
	b.Record(nil)
	if b.State() != Closed {
		t.Fatalf("state %s after two good probes, want closed", b.State())
	}
	// The half-open state is read, not stored: the changes are the stored ones.
	want := "closed->open half-open->open half-open->closed"
	if got := strings.Join(changes, " "); got != want {
		t.Fatalf("changes %q, want %q", got, want)
	}
}
