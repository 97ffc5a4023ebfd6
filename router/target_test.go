package router

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
)

// Per-call timeouts follow the call's token budget and the target's
// measured speed (its slowest tenth), within their bounds.
func TestCallTimeoutFollowsBudgetAndSpeed(t *testing.T) {
	tg := &target{settings: &settings{}}
	judge := pipeline.Request{MaxTokens: 8192}
	if got := tg.timeout(&judge); got != FirstCallTimeout {
		t.Errorf("unmeasured: %s, want %s", got, FirstCallTimeout)
	}
	// 20 answers: 18 at 80 tok/s, 2 at 40 tok/s; the slowest tenth is 40 tok/s.
	for i := 0; i < 20; i++ {
		rate := 80.0
		if i%10 == 0 {
			rate = 40
		}
		tg.lat.observe(time.Second, int(rate))
	}
	want := TTFTAllowance + time.Duration(8192.0/40*float64(time.Second))
	if got := tg.timeout(&judge); got != want {
		t.Errorf("judge budget: %s, want %s", got, want)
	}
	if got := tg.timeout(&pipeline.Request{MaxTokens: 16}); got != MinCallTimeout {
		t.Errorf("tiny budget: %s, want the floor %s", got, MinCallTimeout)
	}
	if got := tg.timeout(&pipeline.Request{MaxTokens: 1 << 20}); got != MaxCallTimeout {
		t.Errorf("huge budget: %s, want the ceiling %s", got, MaxCallTimeout)
	}
	fixed := &target{settings: &settings{cfg: Config{Timeout: 3 * time.Second}}}
	if got := fixed.timeout(&judge); got != 3*time.Second {
		t.Errorf("a set timeout: %s, want 3s", got)
	}
}

// Once the ring of speeds is full, the slowest tenth is worked out again
// every statsEvery answers, not at every call.
func TestSpeedIsKeptForStatsEveryAnswers(t *testing.T) {
	var l latencies
	for range ring {
		l.observe(time.Second, 80)
	}
	if got, _ := l.speed(); got != 80 {
		t.Fatalf("speed %g, want 80", got)
	}
	for i := 1; i <= statsEvery; i++ {
		l.observe(time.Second, 10)
		got, _ := l.speed()
		if want := 80.0; i < statsEvery && got != want {
			t.Fatalf("after %d slow answers: %g, want the kept %g", i, got, want)
		}
		if i == statsEvery && got != 10 {
			t.Fatalf("after %d slow answers: %g, want 10 (16 of 128 are the slowest tenth)", i, got)
		}
	}
}

// panickingBackend's client panics, as one might on an answer it cannot take.
type panickingBackend struct{}

func (panickingBackend) Chat(context.Context, *pipeline.Request) (Reply, error) {
	panic("runtime error: index out of range [3] with length 3")
}

// A panic in the model call comes back to
// the caller as an error wrapping ErrPanic instead of ending the worker.
func TestAPanicInTheModelCallIsAnError(t *testing.T) {
	_, err := chat(context.Background(), panickingBackend{}, &pipeline.Request{})
	if !errors.Is(err, pipeline.ErrPanic) || !strings.Contains(err.Error(), "index out of range") {
		t.Fatalf("error %v: want one wrapping pipeline.ErrPanic that says what panicked", err)
	}
}
