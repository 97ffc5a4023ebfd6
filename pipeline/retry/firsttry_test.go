package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Do's first try, made before any retrying is set up, keeps Do's semantics:
// a Permanent error, MaxTries, a cancelled context, MaxElapsed, Hint and
// OnRetry.
func TestDoFirstTrySemantics(t *testing.T) {
	boom := errors.New("boom")
	// A Permanent first failure: one try, the error unwrapped, no OnRetry.
	notified, tries := 0, 0
	p := Exponential(time.Millisecond, time.Millisecond)
	p.OnRetry = func(error, time.Duration) { notified++ }
	_, err := Do(context.Background(), p, func() (int, error) { tries++; return 0, Permanent(boom) })
	if err != boom || tries != 1 || notified != 0 {
		t.Errorf("permanent: err %v tries %d notified %d", err, tries, notified)
	}
	// MaxTries 1 with a Permanent error: unwrapped.
	p.MaxTries = 1
	if _, err := Do(context.Background(), p, func() (int, error) { return 0, Permanent(boom) }); err != boom {
		t.Errorf("MaxTries 1: %v", err)
	}
	// A cancelled context: fn once, the context's cause.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tries = 0
	p.MaxTries = 0
	if _, err := Do(ctx, p, func() (int, error) { tries++; return 0, boom }); !errors.Is(err, context.Canceled) || tries != 1 {
		t.Errorf("cancelled: %v after %d tries", err, tries)
	}
	// A first try longer than MaxElapsed: no second.
	tries = 0
	p.MaxElapsed = 5 * time.Millisecond
	if _, err := Do(context.Background(), p, func() (int, error) { tries++; time.Sleep(10 * time.Millisecond); return 0, boom }); err != boom || tries != 1 {
		t.Errorf("MaxElapsed: %v after %d tries", err, tries)
	}
	// The Hint reads the first try's error.
	p = Policy{Initial: time.Millisecond, MaxTries: 2, Hint: func(e error) (time.Duration, bool) { return 30 * time.Millisecond, errors.Is(e, boom) }}
	start := time.Now()
	_, _ = Do(context.Background(), p, func() (int, error) { return 0, boom })
	if took := time.Since(start); took < 30*time.Millisecond {
		t.Errorf("Hint ignored on the first failure: took %v", took)
	}
	// OnRetry told of the first failure.
	notified = 0
	p.OnRetry = func(error, time.Duration) { notified++ }
	_, _ = Do(context.Background(), p, func() (int, error) { return 0, boom })
	if notified != 1 {
		t.Errorf("OnRetry told %d times, want 1", notified)
	}
}

// DoAfter takes over from a first try its caller made: a Permanent first
// error ends it without another try, and otherwise fn makes the next tries,
// the caller's counting as the first toward MaxTries.
func TestDoAfterCountsTheCallersTry(t *testing.T) {
	boom := errors.New("boom")
	p := Policy{Initial: time.Millisecond, MaxTries: 3}
	tries := 0
	_, err := DoAfter(context.Background(), p, func() (int, error) { tries++; return 0, boom }, time.Now(), 0, Permanent(boom))
	if err != boom || tries != 0 {
		t.Errorf("permanent first error: err %v after %d more tries, want boom after none", err, tries)
	}
	v, err := DoAfter(context.Background(), p, func() (int, error) { tries++; return 0, boom }, time.Now(), 0, boom)
	if err != boom || tries != 2 {
		t.Errorf("failing: %d, %v after %d more tries; want boom after 2 (MaxTries 3 with the caller's)", v, err, tries)
	}
	tries = 0
	v, err = DoAfter(context.Background(), p, func() (int, error) { tries++; return 7, nil }, time.Now(), 0, boom)
	if v != 7 || err != nil || tries != 1 {
		t.Errorf("second try succeeds: %d, %v after %d tries", v, err, tries)
	}
}
