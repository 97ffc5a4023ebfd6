package adaptive

import (
	"context"
	"testing"
	"time"
)

// A limiter on a hand-driven clock: windows pass when the test says so.
func testLimit(cfg Config) (*Concurrency, *time.Time) {
	l := New(cfg)
	clock := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return clock }
	return l, &clock
}

// busy keeps the limiter full and feeds it windows of samples of the given
// latency: each sample releases a slot and takes one back while the limit
// allows.
func busy(t *testing.T, l *Concurrency, clock *time.Time, windows int, latency time.Duration) {
	t.Helper()
	fill := func() {
		for {
			st := l.State()
			if st.InFlight >= st.Limit {
				return
			}
			if err := l.Acquire(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill()
	for range windows {
		for i := 0; i <= limiterMinSample; i++ {
			if i == limiterMinSample {
				*clock = clock.Add(limiterWindow)
			}
			if l.State().InFlight > 0 {
				l.Release(latency)
			}
			fill()
		}
	}
}

func TestLimitGrowsWhileLatencyHolds(t *testing.T) {
	l, clock := testLimit(Config{Initial: 16, Max: 1000})
	l.slowStart = false // the gradient alone
	busy(t, l, clock, 40, 2*time.Second)
	if got := l.State().Limit; got <= 40 {
		t.Fatalf("limit %d after 40 windows at a steady 2 s, want it well above the initial 16", got)
	}
}

func TestLimitShrinksWhenLatencyRises(t *testing.T) {
	l, clock := testLimit(Config{Initial: 200, Max: 1000})
	busy(t, l, clock, 20, 1*time.Second)
	before := l.State().Limit
	busy(t, l, clock, 10, 4*time.Second)
	st := l.State()
	if st.Limit >= before || st.SlowStart {
		t.Fatalf("limit %d -> %d (slow start %v) when latency went from 1 s to 4 s; want it smaller and slow start over", before, st.Limit, st.SlowStart)
	}
}

func TestLimitBacksOffOnDropsOncePerWindow(t *testing.T) {
	l, clock := testLimit(Config{Initial: 100})
	for range 100 {
		_ = l.Acquire(context.Background())
	}
	l.Drop()
	l.Drop() // the same window: no second cut
	if got := l.State().Limit; got != 90 {
		t.Fatalf("limit %d after two drops in one window with 100 in flight, want 90", got)
	}
	release := func(n int) {
		for range n {
			l.Release(0)
		}
	}
	dropInNextWindow := func() int {
		*clock = clock.Add(limiterWindow)
		l.Drop()
		return l.State().Limit
	}
	release(50)
	if got := dropInNextWindow(); got != 45 {
		t.Fatalf("limit %d after a drop with 50 in flight, want 45", got)
	}
	// Thoughts held by the rate limit keep their slots: more drops while
	// they wait do not cut the limit again and again.
	for range 100 {
		dropInNextWindow()
	}
	if got := l.State().Limit; got != 45 {
		t.Fatalf("limit %d after a hundred drops with the same 50 held, want it to stay 45", got)
	}
	release(50)
	if got := dropInNextWindow(); got != 4 {
		t.Fatalf("limit %d after a drop with nothing in flight, want the minimum 4", got)
	}
}

func TestLimitRespectsTheMemoryBudget(t *testing.T) {
	l, clock := testLimit(Config{Initial: 64, MemoryBudget: 100 << 20})
	heap := uint64(80 << 20) // past 75 %: no growth
	l.heap = func() uint64 { return heap }
	busy(t, l, clock, 20, time.Second)
	if got := l.State().Limit; got != 64 {
		t.Fatalf("limit %d with the heap at 80 %% of the budget, want it held at 64", got)
	}
	heap = 95 << 20 // past 90 %: down to what is in flight, less a tenth
	busy(t, l, clock, 1, time.Second)
	if got := l.State().Limit; got > 58 {
		t.Fatalf("limit %d with the heap at 95 %% of the budget, want at most 58", got)
	}
}

func TestLimitFixedNeverMoves(t *testing.T) {
	l, clock := testLimit(Config{Fixed: 8})
	busy(t, l, clock, 5, time.Millisecond)
	l.Drop()
	if st := l.State(); st.Limit != 8 || st.Adaptive {
		t.Fatalf("fixed limiter moved: %+v", st)
	}
}

// In slow start the limit grows only as answers come back: each answer
// that comes back while the limit is full adds two slots, so a round of
// answers (as many as the limit was when it began) triples it. Time alone,
// with work waiting and no answer back, grows nothing.
func TestLimitSlowStartGrowsPerRoundOfAnswers(t *testing.T) {
	l, clock := testLimit(Config{Initial: 4, Max: 64})
	for range 4 {
		if err := l.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	*clock = clock.Add(time.Minute) // a minute with work waiting and no answer
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.Acquire(short); err == nil {
		t.Fatalf("acquired a 5th slot with no answer back: %+v", l.State())
	}
	for round, want := range []int{12, 36, 64, 64} {
		began := l.State().Limit
		for range began { // one round: an answer per slot held when it began
			l.Release(time.Second)
			for l.State().InFlight < l.State().Limit {
				if err := l.Acquire(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
		if st := l.State(); st.Limit != want || !st.SlowStart {
			t.Fatalf("round %d: %d answers with the limit full took it from %d to %d (slow start %v), want %d", round+1, began, began, st.Limit, st.SlowStart, want)
		}
	}
}

// Answers that come back while the limit is not full say nothing about a
// higher one: slow start does not grow it.
func TestLimitSlowStartNeedsAFullLimit(t *testing.T) {
	l, _ := testLimit(Config{Initial: 16})
	for range 4 {
		_ = l.Acquire(context.Background())
	}
	for range 4 {
		l.Release(time.Second)
	}
	if got := l.State().Limit; got != 16 {
		t.Fatalf("limit %d after 4 answers with 4 of 16 slots used, want 16", got)
	}
}

// Slow start ends, and the limit shrinks, when a round's latency rises
// past the floor: the provider queues what we sent.
func TestLimitSlowStartEndsWhenLatencyRises(t *testing.T) {
	l, clock := testLimit(Config{Initial: 16, Max: 4096})
	busy(t, l, clock, 3, time.Second)
	grown := l.State()
	if !grown.SlowStart || grown.Limit <= 16 {
		t.Fatalf("after 3 windows of answers at a steady 1 s: %+v, want slow start grown past 16", grown)
	}
	busy(t, l, clock, 3, 3*time.Second)
	if st := l.State(); st.SlowStart || st.Limit >= grown.Limit {
		t.Fatalf("latency 1 s -> 3 s: %+v, want slow start over and the limit under %d", st, grown.Limit)
	}
}

// Work of a millisecond or two that jitters by tens of milliseconds (the
// scheduler, the collector, the machine's other work) is not a queue: the
// limit keeps growing. Latency that rises past the slack still shrinks it.
func TestLimitReadsMillisecondsOfJitterAsNoQueue(t *testing.T) {
	l, clock := testLimit(Config{Initial: 16, Max: 4096})
	l.slowStart = false // the gradient alone
	busy(t, l, clock, 5, time.Millisecond)
	for range 10 {
		busy(t, l, clock, 1, 30*time.Millisecond)
		busy(t, l, clock, 1, 2*time.Millisecond)
	}
	grown := l.State().Limit
	if grown <= 16 {
		t.Fatalf("limit %d after windows of 1-30 ms against a 1 ms floor, want it above the initial 16", grown)
	}
	busy(t, l, clock, 10, 400*time.Millisecond)
	if st := l.State(); st.Limit >= grown {
		t.Fatalf("limit %d -> %d when latency went from ~2 ms to 400 ms; want it smaller", grown, st.Limit)
	}
}
