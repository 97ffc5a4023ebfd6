package breaker

import (
	"sync"
	"time"
)

// State is the state of a circuit breaker.
type State string

// The breaker states.
const (
	Closed   State = "closed"    // calls flow
	Open     State = "open"      // calls are refused until the cool-down passes
	HalfOpen State = "half-open" // probe calls decide whether to close again
)

// Config sets when a breaker opens and closes. Zero fields take the
// origin's defaults: open after 3 failures in a row, probe after 60 s, close
// after 2 successful probes.
type Config struct {
	Failures  int
	Cooldown  time.Duration
	Successes int
}

func (c Config) withDefaults() Config {
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
// concurrent use.
type Breaker struct {
	cfg      Config
	onChange func(from, to State, cause error)

	mu        sync.Mutex
	state     State
	failures  int
	successes int
	openedAt  time.Time
	now       func() time.Time
}

// New returns a closed breaker. onChange, when not nil, is called (outside
// the breaker's lock) on every state change, with the failure that opened
// the breaker when it opens (nil for the other changes), so the change can
// be logged with its cause.
func New(cfg Config, onChange func(from, to State, cause error)) *Breaker {
	return &Breaker{cfg: cfg.withDefaults(), onChange: onChange, state: Closed, now: time.Now}
}

// State returns the current state, moving open to half-open once the cool-down has passed.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stateLocked()
}

func (b *Breaker) stateLocked() State {
	if b.state == Open && b.now().Sub(b.openedAt) >= b.cfg.Cooldown {
		return HalfOpen
	}
	return b.state
}

// RetryIn returns how long an open breaker stays open (0 when it is not).
func (b *Breaker) RetryIn() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stateLocked() != Open {
		return 0
	}
	return b.cfg.Cooldown - b.now().Sub(b.openedAt)
}

// Allow reports whether a call may go ahead now.
func (b *Breaker) Allow() bool { return b.State() != Open }

// Record notes the outcome of a call that Allow let through: nil for a
// success, else the failure. Only failures that say the guarded thing is
// broken belong here; a call refused for what it asked (a request the
// provider refused) is recorded neither way.
func (b *Breaker) Record(failure error) {
	ok := failure == nil
	b.mu.Lock()
	from := b.stateLocked()
	to := from
	switch {
	case ok && from == HalfOpen:
		b.successes++
		if b.successes >= b.cfg.Successes {
			to = Closed
		}
	case ok:
		b.failures = 0
	case from == HalfOpen:
		to = Open
	default:
		b.failures++
		if b.failures >= b.cfg.Failures {
			to = Open
		}
	}
	b.state = to
	if to != from {
		b.failures, b.successes = 0, 0
		if to == Open {
			b.openedAt = b.now()
		}
	}
	b.mu.Unlock()
	if b.onChange != nil && to != from {
		var cause error
		if to == Open {
			cause = failure
		}
		b.onChange(from, to, cause)
	}
}
