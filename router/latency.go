package router

import (
	"math"
	"slices"
	"sync"
	"time"
)

// ring is how many of a target's last answers its statistics look at;
// statsEvery is how many answers its kept speed outlives (until the ring is
// full it is worked out again at every answer).
const (
	ring       = 128
	statsEvery = 16
)

// latencies are a target's last answers' latencies and speeds, for its
// per-call timeout (speed) and its hedging (p95). Safe for concurrent use.
type latencies struct {
	mu        sync.Mutex
	latencies [ring]time.Duration // the last answers' latencies, a ring
	rates     [ring]float64       // and their speeds, completion tokens per second
	sorted    [ring]float64       // speed's scratch: on its stack, 1 KiB of every caller's depth
	n         int
	// slowest is speed's answer, kept from the n of slowestAt until
	// statsEvery more answers came (every call asks for it).
	slowest   float64
	slowestAt int
}

// observe records an answer that took d for tokens completion tokens.
func (l *latencies) observe(d time.Duration, tokens int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.latencies[l.n%len(l.latencies)] = d
	rate := math.Inf(1)
	if d > 0 {
		rate = float64(tokens) / d.Seconds()
	}
	l.rates[l.n%len(l.rates)] = rate
	l.n++
}

// speed returns the slowest tenth of the recent speeds (tokens per second),
// or false below 8 answers. Every call asks for it, so it sorts the speeds
// again only every statsEvery answers once the ring is full.
func (l *latencies) speed() (float64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := min(l.n, len(l.rates))
	if n < 8 {
		return 0, false
	}
	if l.n-l.slowestAt >= statsEvery || (n < len(l.rates) && l.n != l.slowestAt) {
		xs := l.sorted[:n]
		copy(xs, l.rates[:n])
		slices.Sort(xs)
		l.slowest, l.slowestAt = xs[(n-1)/10], l.n
	}
	return l.slowest, true
}

// p95 returns the observed p95 latency, or false below 20 answers.
func (l *latencies) p95() (time.Duration, bool) {
	l.mu.Lock()
	n := min(l.n, len(l.latencies))
	xs := append([]time.Duration(nil), l.latencies[:n]...)
	l.mu.Unlock()
	if n < 20 {
		return 0, false
	}
	slices.Sort(xs)
	return xs[(n*95+99)/100-1], true
}
