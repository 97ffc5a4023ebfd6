package router

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/breaker"
	"github.com/noesis-dev/noesis/pipeline/fair"
)

// Per-call timeouts when Config.Timeout is zero.
const (
	TTFTAllowance    = 10 * time.Second
	MinCallTimeout   = 15 * time.Second
	FirstCallTimeout = 120 * time.Second // the origin's timeout
	MaxCallTimeout   = 10 * time.Minute
)

type target struct {
	Target
	provider Provider
	backend  Backend
	// blockedUntil (unix nanos) holds every call to the target back after a
	// 429, until the provider's Retry-After has passed: one rate-limited
	// answer slows the whole process down instead of each worker finding out.
	blockedUntil atomic.Int64
	pace         pacer // the quota learned from 429s
	breaker      *breaker.Breaker
	lastCall     atomic.Int64 // unix nanos of the last answer, for cold starts
	slots        *fair.Slots  // Concurrency, when limited; shared between agents in turn

	latMu     sync.Mutex
	latencies [ring]time.Duration // the last answers' latencies, a ring
	rates     [ring]float64       // and their speeds, completion tokens per second
	latN      int
	// slowest is speed's answer, kept from the latN of slowestAt until
	// statsEvery more answers came (every call asks for it).
	slowest   float64
	slowestAt int
}

// ring is how many of a target's last answers its statistics look at;
// statsEvery is how many answers its kept speed outlives (until the ring is
// full it is worked out again at every answer).
const (
	ring       = 128
	statsEvery = 16
)

func (t *target) observe(d time.Duration, tokens int) {
	t.latMu.Lock()
	t.latencies[t.latN%len(t.latencies)] = d
	rate := math.Inf(1)
	if d > 0 {
		rate = float64(tokens) / d.Seconds()
	}
	t.rates[t.latN%len(t.rates)] = rate
	t.latN++
	t.latMu.Unlock()
}

// speed returns the slowest tenth of the target's recent speeds (tokens per
// second), or false below 8 answers. Every call asks for it, so it sorts the
// speeds again only every statsEvery answers once the ring is full.
func (t *target) speed() (float64, bool) {
	t.latMu.Lock()
	defer t.latMu.Unlock()
	n := min(t.latN, len(t.rates))
	if n < 8 {
		return 0, false
	}
	if t.latN-t.slowestAt >= statsEvery || (n < len(t.rates) && t.latN != t.slowestAt) {
		var xs [ring]float64
		copy(xs[:], t.rates[:n])
		slices.Sort(xs[:n])
		t.slowest, t.slowestAt = xs[(n-1)/10], t.latN
	}
	return t.slowest, true
}

// callTimeout bounds one call of req to t (see Config.Timeout).
func (c *Chain) callTimeout(t *target, req pipeline.Request) time.Duration {
	if req.Timeout > 0 {
		return req.Timeout
	}
	if c.cfg.Timeout > 0 {
		return c.cfg.Timeout
	}
	rate, ok := t.speed()
	if !ok || req.MaxTokens <= 0 {
		return FirstCallTimeout
	}
	if math.IsInf(rate, 1) || rate <= 0 {
		return MinCallTimeout
	}
	d := TTFTAllowance + time.Duration(float64(req.MaxTokens)/rate*float64(time.Second))
	return min(max(d, MinCallTimeout), MaxCallTimeout)
}

// p95 returns the target's observed p95 latency, or false below 20 answers.
func (t *target) p95() (time.Duration, bool) {
	t.latMu.Lock()
	n := min(t.latN, len(t.latencies))
	xs := append([]time.Duration(nil), t.latencies[:n]...)
	t.latMu.Unlock()
	if n < 20 {
		return 0, false
	}
	slices.Sort(xs)
	return xs[(n*95+99)/100-1], true
}

// modelAt is a model at a provider: two targets that share it share its context length.
type modelAt struct{ provider, model string }

func (t *target) modelAt() modelAt { return modelAt{t.provider.Name, t.Model} }

// noteTooLong adds to tooLong the models that refused err's request as past
// their context.
func (c *Chain) noteTooLong(tooLong map[modelAt]bool, err error) {
	for _, ce := range callErrors(err) {
		if t := c.targets[ce.Target]; t != nil && ce.Refusal == RefusalContextLength {
			tooLong[t.modelAt()] = true
		}
	}
}

// cold reports whether the next call may meet a cold container.
func (t *target) cold() bool {
	if t.provider.ColdStartTimeout <= 0 {
		return false
	}
	last := t.lastCall.Load()
	idle := t.provider.IdleWindow
	if idle <= 0 {
		idle = 5 * time.Minute
	}
	return last == 0 || time.Since(time.Unix(0, last)) > idle
}

// waitUnblocked waits out the target's rate-limit pause, or fails at once
// when ctx would end first.
func (t *target) waitUnblocked(ctx context.Context) error {
	until := time.Unix(0, t.blockedUntil.Load())
	wait := time.Until(until)
	if wait <= 0 {
		return nil
	}
	// Spread the calls the pause held over half its length again, so they
	// do not all meet the provider's limiter in the same instant.
	wait += rand.N(wait/2 + 1)
	until = time.Now().Add(wait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(until) {
		return &pipeline.RetryAfterError{After: wait,
			Err: fmt.Errorf("%w: %w: %s is rate limited for another %s", pipeline.ErrTransient, pipeline.ErrRateLimited, t.Name, wait.Round(time.Millisecond))}
	}
	return sleepCtx(ctx, wait)
}

// rateLimited reports whether the target is paused by a 429 right now.
func (t *target) rateLimited() bool { return time.Now().UnixNano() < t.blockedUntil.Load() }

func (t *target) block(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := t.blockedUntil.Load()
		if cur >= until || t.blockedUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", pipeline.ErrTransient, ctx.Err())
	case <-timer.C:
		return nil
	}
}
