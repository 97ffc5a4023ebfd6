package retry

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errFlaky = errors.New("flaky")

func TestDo(t *testing.T) {
	fast := Exponential(time.Millisecond, 2*time.Millisecond)
	for _, tc := range []struct {
		name      string
		policy    Policy
		fails     int   // tries that fail before one succeeds
		failWith  error // what they fail with
		wantTries int
		wantErr   error
	}{
		{"success at once", fast, 0, errFlaky, 1, nil},
		{"tries until it works", fast, 3, errFlaky, 4, nil},
		{"gives up after MaxTries with the last error", withTries(fast, 3), 10, errFlaky, 3, errFlaky},
		{"a permanent error stops at once", fast, 10, Permanent(errFlaky), 1, errFlaky},
		{"a permanent error on the last try comes back unwrapped", withTries(fast, 1), 10, Permanent(errFlaky), 1, errFlaky},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tries := 0
			v, err := Do(context.Background(), tc.policy, func() (int, error) {
				tries++
				if tries <= tc.fails {
					return 0, tc.failWith
				}
				return 7, nil
			})
			if tries != tc.wantTries {
				t.Errorf("tries = %d, want %d", tries, tc.wantTries)
			}
			if tc.wantErr == nil && (err != nil || v != 7) {
				t.Fatalf("Do = %d, %v; want 7, nil", v, err)
			}
			if tc.wantErr != nil && err != tc.wantErr {
				t.Fatalf("err = %#v, want exactly %v", err, tc.wantErr)
			}
		})
	}
}

func withTries(p Policy, n int) Policy { p.MaxTries = n; return p }

func TestDoStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("shutting down")
	tries := 0
	_, err := Do(ctx, Exponential(time.Millisecond, time.Millisecond), func() (struct{}, error) {
		tries++
		if tries == 3 {
			cancel(stop)
		}
		return struct{}{}, errFlaky
	})
	if !errors.Is(err, stop) || tries != 3 {
		t.Fatalf("Do = %v after %d tries; want the context's cause after 3", err, tries)
	}
}

func TestDoWithinDeadlineGivesTheLastError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	p := Policy{Initial: 2 * time.Hour, WithinDeadline: true}
	tries := 0
	_, err := Do(ctx, p, func() (int, error) { tries++; return 0, errFlaky })
	if err != errFlaky || tries != 1 {
		t.Fatalf("Do = %v after %d tries; want errFlaky after 1 (the next wait outlasts the deadline)", err, tries)
	}
}

func TestDoMaxElapsed(t *testing.T) {
	p := Policy{Initial: time.Hour, MaxElapsed: time.Minute}
	tries := 0
	_, err := Do(context.Background(), p, func() (int, error) { tries++; return 0, errFlaky })
	if err != errFlaky || tries != 1 {
		t.Fatalf("Do = %v after %d tries; want errFlaky after 1 (the next wait ends past MaxElapsed)", err, tries)
	}
}

func TestDoHintLengthensTheWait(t *testing.T) {
	const asked = 30 * time.Millisecond
	var waits []time.Duration
	p := Exponential(time.Millisecond, time.Millisecond)
	p.Hint = func(err error) (time.Duration, bool) { return asked, errors.Is(err, errFlaky) }
	p.OnRetry = func(_ error, d time.Duration) { waits = append(waits, d) }
	tries := 0
	start := time.Now()
	_, err := Do(context.Background(), p, func() (int, error) {
		tries++
		if tries < 3 {
			return 0, errFlaky
		}
		return 1, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(waits) != 2 || waits[0] != asked || waits[1] != asked {
		t.Fatalf("waits = %v, want two of %v", waits, asked)
	}
	if took := time.Since(start); took < 2*asked {
		t.Fatalf("took %v, want at least %v", took, 2*asked)
	}
}

// A first try that succeeds costs nothing of the retrying: Do wraps every
// publish of every thought's outputs and nearly every model call.
func TestDoFirstTryAllocatesNothing(t *testing.T) {
	p := Exponential(time.Millisecond, time.Second)
	p.MaxElapsed, p.MaxTries = time.Minute, 3
	ctx := context.Background()
	if a := testing.AllocsPerRun(100, func() {
		if _, err := Do(ctx, p, func() (int, error) { return 1, nil }); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%.0f allocations for a first try that succeeds, want 0", a)
	}
	// A failed first try is still the first of MaxTries.
	tries := 0
	_, err := Do(ctx, p, func() (int, error) { tries++; return 0, errors.New("down") })
	if err == nil || tries != 3 {
		t.Errorf("%d tries (err %v), want 3 and the error", tries, err)
	}
}
