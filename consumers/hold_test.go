package consumers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
)

// A rate-limited thought is held and tried again after its Retry-After,
// while the pool's patience lasts, spending no delivery; past it, the rate
// limit is the delivery's failure; any other failure passes at once.
func TestARateLimitedThoughtIsHeldWhileThePatienceLasts(t *testing.T) {
	limited := &pipeline.RetryAfterError{Err: pipeline.ErrRateLimited, After: time.Millisecond}
	cases := []struct {
		name      string
		patience  time.Duration
		after     time.Duration // how long the rate limit asks to wait
		fails     int           // tries that fail before one succeeds
		failWith  error
		wantTries int
		wantErr   string
		wantWaits uint64
	}{
		{"tried again until it succeeds", time.Minute, time.Millisecond, 2, limited, 3, "", 2},
		{"given up when the wait would outlast the patience", 10 * time.Millisecond, time.Second, 5, nil, 1, "rate limited for longer than 10ms", 0},
		{"any other failure is not held", time.Minute, 0, 5, pipeline.ErrTransient, 1, "transient failure", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPool(nil, PoolConfig{Stage: pipeline.StageNarrative, RateLimitPatience: tc.patience}, nil, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			failWith := tc.failWith
			if failWith == nil {
				failWith = &pipeline.RetryAfterError{Err: pipeline.ErrRateLimited, After: tc.after}
			}
			tries := 0
			hold := p.held(func(context.Context, *delivery) (result, error) {
				tries++
				if tries <= tc.fails {
					return result{}, failWith
				}
				return result{out: &pipeline.Narrative{}, took: time.Millisecond}, nil
			})
			r, err := hold(context.Background(), &delivery{log: zerolog.Nop()})
			if tries != tc.wantTries || p.Stats().RateLimitWaits != tc.wantWaits {
				t.Errorf("%d tries and %d waits, want %d and %d", tries, p.Stats().RateLimitWaits, tc.wantTries, tc.wantWaits)
			}
			switch {
			case tc.wantErr == "" && (err != nil || r.out == nil):
				t.Errorf("result %+v, error %v: want the output", r, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, failWith)):
				t.Errorf("error %v, want %q wrapping %v", err, tc.wantErr, failWith)
			}
		})
	}
}

// A held thought is let go when the work's context ends.
func TestAHeldThoughtIsLetGoWhenTheWorkEnds(t *testing.T) {
	p, err := NewPool(nil, PoolConfig{Stage: pipeline.StageNarrative}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hold := p.held(func(context.Context, *delivery) (result, error) {
		cancel()
		return result{}, &pipeline.RetryAfterError{Err: pipeline.ErrRateLimited, After: time.Minute}
	})
	done := make(chan error, 1)
	go func() { _, err := hold(ctx, &delivery{log: zerolog.Nop()}); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, pipeline.ErrRateLimited) {
			t.Errorf("error %v, want the rate limit", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held thought was not let go")
	}
}
