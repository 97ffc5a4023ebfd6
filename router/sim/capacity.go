package sim

import (
	"context"
	"sync"
	"sync/atomic"
)

// generators holds, per model, the slots of a provider that generates at
// most Config.Capacity answers at once and queues the rest (a vLLM server's
// --max-num-seqs, a provider's per-deployment concurrency): past the
// capacity, a call waits its turn in arrival order, so its latency grows
// with the load, and a client that sends too much sees its calls pass their
// timeout while the provider keeps answering. Nothing is refused.
type generators struct {
	mu    sync.Mutex
	slots map[string]chan struct{}
	// busy counts the answers being generated, of every model; peak is the
	// most at once.
	busy, peak atomic.Int64
}

// PeakGenerating is the most answers the simulator generated at once, all
// models together (with Capacity: at most Capacity per model).
func (s *Server) PeakGenerating() int64 { return s.gen.peak.Load() }

// generate waits for a free generation slot of model and returns the
// function that frees it; false when ctx ended first (the caller gave up
// while queued). With no Capacity it returns at once.
func (s *Server) generate(ctx context.Context, model string) (release func(), ok bool) {
	if s.cfg.Capacity <= 0 {
		return s.gen.begin(), true
	}
	s.gen.mu.Lock()
	if s.gen.slots == nil {
		s.gen.slots = map[string]chan struct{}{}
	}
	slots := s.gen.slots[model]
	if slots == nil {
		slots = make(chan struct{}, s.cfg.Capacity)
		s.gen.slots[model] = slots
	}
	s.gen.mu.Unlock()
	select {
	case slots <- struct{}{}:
		end := s.gen.begin()
		return func() { end(); <-slots }, true
	case <-ctx.Done():
		return nil, false
	}
}

// begin counts an answer being generated until the returned function is called.
func (g *generators) begin() func() {
	n := g.busy.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	return func() { g.busy.Add(-1) }
}
