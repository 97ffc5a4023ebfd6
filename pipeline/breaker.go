package pipeline

import (
	"sync"
	"time"
)

// BreakerState is the state of a circuit breaker.
type BreakerState string

// The breaker states.
const (
	BreakerClosed   BreakerState = "closed"    // calls flow
	BreakerOpen     BreakerState = "open"      // calls are refused until the cool-down passes
	BreakerHalfOpen BreakerState = "half-open" // probe calls decide whether to close again
)

// BreakerConfig sets when a breaker opens and closes. Zero fields take the
// origin's defaults: open after 3 failures in a row, probe after 60 s, close
// after 2 successful probes.
type BreakerConfig struct {
	Failures  int
	Cooldown  time.Duration
	Successes int
}

func (c BreakerConfig) withDefaults() BreakerConfig {
	if c.Failures <= 0 {
		c.Failures = 3
	}
	if c.Cooldown <= 0 {
		c.Cooldown = 60 * time.Second
	}
	if c.Successes <= 0 {
		c.Successes = 2
	}
	return c
}

// Breaker is a circuit breaker: it refuses calls to something that keeps
// failing, then lets probes through after a cool-down. It is safe for
// concurrent use. OnChange, when set, is called (outside the lock) on every
// state change, with the failure that opened the breaker when it opens (nil
// for the other changes), so the change can be logged with its cause.
type Breaker struct {
	cfg      BreakerConfig
	OnChange func(from, to BreakerState, cause error)

	mu        sync.Mutex
	state     BreakerState
	failures  int
	successes int
	openedAt  time.Time
	now       func() time.Time
}

// NewBreaker returns a closed breaker.
func NewBreaker(cfg BreakerConfig) *Breaker {
	return &Breaker{cfg: cfg.withDefaults(), state: BreakerClosed, now: time.Now}
}

// State returns the current state, moving open to half-open once the cool-down has passed.
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stateLocked()
}

func (b *Breaker) stateLocked() BreakerState {
	if b.state == BreakerOpen && b.now().Sub(b.openedAt) >= b.cfg.Cooldown {
		return BreakerHalfOpen
	}
	return b.state
}

// RetryIn returns how long an open breaker stays open (0 when it is not).
func (b *Breaker) RetryIn() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stateLocked() != BreakerOpen {
		return 0
	}
	return b.cfg.Cooldown - b.now().Sub(b.openedAt)
}

// Allow reports whether a call may go ahead now.
func (b *Breaker) Allow() bool { return b.State() != BreakerOpen }

// Record notes the outcome of a call that Allow let through: nil for a
// success, else the failure. Only failures that say the guarded thing is
// broken belong here; a call refused for what it asked (ErrRequestRefused)
// is recorded neither way.
func (b *Breaker) Record(failure error) {
	ok := failure == nil
	b.mu.Lock()
	from := b.stateLocked()
	to := from
	switch {
	case ok && from == BreakerHalfOpen:
		b.successes++
		if b.successes >= b.cfg.Successes {
			to = BreakerClosed
		}
	case ok:
		b.failures = 0
	case from == BreakerHalfOpen:
		to = BreakerOpen
	default:
		b.failures++
		if b.failures >= b.cfg.Failures {
			to = BreakerOpen
		}
	}
	b.state = to
	if to != from {
		b.failures, b.successes = 0, 0
		if to == BreakerOpen {
			b.openedAt = b.now()
		}
	}
	fn := b.OnChange
	b.mu.Unlock()
	if fn != nil && to != from {
		var cause error
		if to == BreakerOpen {
			cause = failure
		}
		fn(from, to, cause)
	}
}
