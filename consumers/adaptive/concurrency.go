package adaptive

import (
	"context"
	"math"
	"runtime/metrics"
	"sync"
	"time"
)

// Config configures a concurrency limit.
type Config struct {
	// Fixed, when positive, is the limit, always: the adaptive limit is off.
	Fixed int
	// Initial is where an adaptive limit starts; default 16.
	Initial int
	// Min and Max bound an adaptive limit; defaults 4 and 4096.
	Min, Max int
	// MemoryBudget, in bytes of live Go heap, stops the limit from growing
	// at 75 % of it and pulls it down to what is in flight above 90 %; 0: no budget.
	MemoryBudget uint64
}

func (c Config) withDefaults() Config {
	if c.Initial <= 0 {
		c.Initial = 16
	}
	if c.Min <= 0 {
		c.Min = 4
	}
	if c.Max <= 0 {
		c.Max = 4096
	}
	c.Max = max(c.Max, c.Min)
	c.Initial = min(max(c.Initial, c.Min), c.Max)
	return c
}

// The adaptive limit's constants: Gradient2's smoothing, a tighter tolerance
// (Gradient2 allows 1.5 over a long-run average; this holds latency to its floor).
const (
	limiterTolerance = 1.25 // latency may rise this much over its floor before the limit shrinks
	// limiterSlack is latency over the floor that is never read as a queue:
	// work of a few milliseconds (answers from the cache, a local model)
	// jitters by that much with the scheduler, the collector and the
	// machine's other work. Held to 1.25 x a 1 ms floor alone, the limit of
	// a worker offered 1,000 thoughts/s of zero-latency answers fell to 5
	// and 6 and it fell behind (413 thoughts/s). 50 ms is 4 % of the fastest
	// model's 1.1 s, where the tolerance still rules.
	limiterSlack     = 50 * time.Millisecond
	limiterSmoothing = 0.2                    // how far one update moves the limit towards its target
	limiterWindow    = 100 * time.Millisecond // samples are averaged over at least this long...
	limiterFloorSpan = 30 * time.Second       // the floor is the least window average over one or two of these
	limiterMinSample = 10                     // ...and at least this many
	limiterBackoff   = 0.9                    // on a rate limit or a deadline, the limit goes to this much of the work in flight
	// slowStartGain is what one answer adds in slow start: TCP's
	// Appropriate Byte Counting (RFC 3465) lets an acknowledgement grow the
	// window by up to two segments (L = 2), so a round of answers triples
	// the limit. Measured at 1,000 thoughts/s of seed latencies on the 2-core
	// machine: with one slot an answer, a cold worker took eight rounds
	// (16 s) to reach the ~2,000 thoughts in flight it needs, and the backlog
	// of those seconds did not drain within the run.
	slowStartGain = 2
)

// Concurrency is an adaptive concurrency limit in the family of Netflix's
// concurrency-limits (Gradient2) and Envoy's adaptive concurrency filter. It
// compares the latency of recent work (averaged over a window of answers)
// with its floor, the least window average of the last 30-60 s (as Vegas and
// Envoy hold latency against its no-load value), allowing 1.25 x the floor
// plus 50 ms of jitter.
//
// It grows only as answers come back, never on elapsed time alone. In slow
// start (until the first pushback) each answer that comes back while the
// limit is full adds two slots, as an acknowledgement may add two segments
// to TCP's window (RFC 3465): the limit triples once per round of answers
// (as many answers as the limit was when the round began), so a burst of
// work never goes out faster than the work before it came back allows. Afterwards, while recent latency
// stays within 1.25 x the floor (plus the slack), it grows by about its square root per
// window of answers, as long as the work in flight uses at least half of it.
//
// Overload shrinks it: latency past 1.25 x the floor plus 50 ms shrinks it in
// proportion (to half at most, per window), and a rate limit, a deadline or
// an overloaded provider (Drop) takes it to a tenth under the work in
// flight, at most once per window. Either ends slow start. The router
// reports an overloaded provider as a rate limit rather than a failure, so
// the limit shrinks before any breaker opens (router.ErrOverloaded,
// docs/performance.md). It never leaves [Min, Max], and never grows while
// the Go heap is past 75 % of MemoryBudget. With Fixed set it is a plain
// semaphore. Safe for concurrent use.
type Concurrency struct {
	cfg Config

	mu       sync.Mutex
	wake     chan struct{} // closed and replaced when a slot frees
	limit    float64
	inflight int
	// floor is the least window average of the last 30-60 s: the latency
	// with no queue to speak of, what recent latency is held against.
	floor, curMin, prevMin float64
	period                 time.Time // when the current floor period began
	sum                    float64   // the window's samples, ms
	n                      int
	start                  time.Time // the window's start
	lastDrop               time.Time
	// slowStart: until the first sign of pushback, each answer that comes
	// back while the limit is full adds two slots, as TCP's slow start does (RFC 3465).
	slowStart bool

	heap func() uint64
	now  func() time.Time
}

// New builds a limit; cfg's zero fields take their defaults.
func New(cfg Config) *Concurrency {
	cfg = cfg.withDefaults()
	l := &Concurrency{cfg: cfg, wake: make(chan struct{}), heap: liveHeap, now: time.Now, slowStart: cfg.Fixed <= 0}
	if cfg.Fixed > 0 {
		l.limit = float64(cfg.Fixed)
	} else {
		l.limit = float64(cfg.Initial)
	}
	return l
}

// Acquire takes a slot, waiting until one is free or ctx ends. It never
// raises the limit: only answers do (Release).
func (l *Concurrency) Acquire(ctx context.Context) error {
	for {
		l.mu.Lock()
		if l.inflight < int(l.limit) {
			l.inflight++
			l.mu.Unlock()
			return nil
		}
		wake := l.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Reclaim takes a slot at once, past the limit if need be: for work that
// gave its slot back (Release(0)) while it waited on something else, still
// to Release it once done, and that can no longer wait in Acquire (its
// context ended). Safe for concurrent use.
func (l *Concurrency) Reclaim() {
	l.mu.Lock()
	l.inflight++
	l.mu.Unlock()
}

// overBudget reports whether the Go heap is past num/den of the memory budget.
func (l *Concurrency) overBudget(den, num uint64) bool {
	return l.cfg.MemoryBudget > 0 && l.heap() > l.cfg.MemoryBudget/den*num
}

// Release gives a slot back. latency > 0 is a sample of how long the work
// took, an answer; 0 means no sample (it failed, or did no model work). In
// slow start an answer that comes back while the limit is full adds two slots.
func (l *Concurrency) Release(latency time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	full := l.inflight >= int(l.limit)
	l.inflight--
	close(l.wake)
	l.wake = make(chan struct{})
	if latency <= 0 || l.cfg.Fixed > 0 {
		return
	}
	if l.slowStart && full && !l.overBudget(4, 3) {
		l.limit = l.clamp(l.limit + slowStartGain)
	}
	if l.n == 0 {
		l.start = now
	}
	l.sum += float64(latency) / float64(time.Millisecond)
	l.n++
	if l.n < limiterMinSample || now.Sub(l.start) < limiterWindow {
		return
	}
	l.update(l.sum/float64(l.n), now)
	l.sum, l.n = 0, 0
}

// update moves the limit after a window whose average latency was short (ms).
func (l *Concurrency) update(short float64, now time.Time) {
	// The floor: the least window average of this period and the last, so
	// it follows a provider that got slower for good within a minute.
	if l.period.IsZero() || now.Sub(l.period) >= limiterFloorSpan {
		l.prevMin, l.curMin, l.period = l.curMin, 0, now
	}
	if l.curMin == 0 || short < l.curMin {
		l.curMin = short
	}
	l.floor = l.curMin
	if l.prevMin > 0 && l.prevMin < l.floor {
		l.floor = l.prevMin
	}
	if l.overBudget(10, 9) {
		l.slowStart = false
		l.limit = l.clamp(math.Min(l.limit, float64(l.inflight)*limiterBackoff))
		return
	}
	// Work that uses less than half the limit says nothing about a higher one.
	if float64(l.inflight) < l.limit/2 {
		return
	}
	gradient := math.Max(0.5, math.Min(1, (limiterTolerance*l.floor+float64(limiterSlack/time.Millisecond))/short))
	if gradient < 1 {
		l.slowStart = false
	} else if l.slowStart {
		return // in slow start the answers themselves grow it (Release)
	}
	target := l.limit*gradient + math.Sqrt(l.limit)
	if l.overBudget(4, 3) {
		target = math.Min(target, l.limit)
	}
	l.limit = l.clamp(l.limit*(1-limiterSmoothing) + target*limiterSmoothing)
}

// Drop is a signal that the work behind the limit is pushing back (a rate
// limit, a timeout): the limit falls to a tenth under the work in flight
// (if it is not already lower), at most once per window.
func (l *Concurrency) Drop() {
	if l.cfg.Fixed > 0 {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastDrop) < limiterWindow {
		return
	}
	l.lastDrop = now
	l.slowStart = false
	// A tenth under what is in flight, as TCP sets its window from the data
	// in flight: thoughts held by a rate limit keep their slots, so a limit
	// cut again and again while they wait would be at its minimum when the
	// storm ends, and a limit already under them stops new work anyway.
	l.limit = l.clamp(math.Min(l.limit, float64(l.inflight)*limiterBackoff))
}

func (l *Concurrency) clamp(v float64) float64 {
	return math.Max(float64(l.cfg.Min), math.Min(float64(l.cfg.Max), v))
}

// Reading is a limit's reading: the limit, the work in flight, and how it moves.
type Reading struct {
	Limit, InFlight int
	Adaptive        bool
	SlowStart       bool
	FloorMS         float64 // the latency floor the limit holds recent latency against
}

// State reads the limit.
func (l *Concurrency) State() Reading {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Reading{Limit: int(l.limit), InFlight: l.inflight, Adaptive: l.cfg.Fixed <= 0, SlowStart: l.slowStart, FloorMS: l.floor}
}

// liveHeap is the bytes of live and not yet swept Go heap objects.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
