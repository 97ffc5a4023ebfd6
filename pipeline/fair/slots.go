package fair

import (
	"context"
	"math"
	"sync"
)

// Slots is a counting semaphore whose waiters are served by band, then, in
// a band, first to the agent that holds the fewest slots (in turn among
// agents that hold as many): max-min fairness. A model target's concurrency
// is one: when one agent's calls fill it, every slot freed goes to another
// agent waiting until it holds as many, not to the flood's next call. Safe
// for concurrent use.
type Slots struct {
	mu      sync.Mutex
	free    int
	held    map[string]int // agent -> slots it holds
	waiting *Queue[*waiter]
}

type waiter struct {
	agent string
	ready chan struct{} // closed when the slot is handed over
	gone  bool          // the waiter gave up; skip it
}

// NewSlots returns n slots (at least 1).
func NewSlots(n int) *Slots {
	return &Slots{free: max(n, 1), held: map[string]int{}, waiting: NewQueue[*waiter](math.MaxInt)}
}

// Acquire takes a slot for agent in band b, waiting for one in turn. It
// returns ctx's error if ctx ends first; the slot is then not held. A slot
// taken is given back with Release(agent).
func (s *Slots) Acquire(ctx context.Context, agent string, b int) error {
	s.mu.Lock()
	if s.free > 0 && s.waiting.Len() == 0 {
		s.free--
		s.held[agent]++
		s.mu.Unlock()
		return nil
	}
	w := &waiter{agent: agent, ready: make(chan struct{})}
	_ = s.waiting.Push(context.Background(), agent, b, w) // unbounded: never waits
	s.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-w.ready: // handed over meanwhile: give it on
			s.releaseLocked(agent)
		default:
			w.gone = true
		}
		return ctx.Err()
	}
}

// Release gives agent's slot back: to the next waiter, or to the pool.
func (s *Slots) Release(agent string) {
	s.mu.Lock()
	s.releaseLocked(agent)
	s.mu.Unlock()
}

func (s *Slots) releaseLocked(agent string) {
	if s.held[agent]--; s.held[agent] <= 0 {
		delete(s.held, agent)
	}
	for {
		w, ok := s.waiting.tryPopBy(func(a string) int { return s.held[a] })
		if !ok {
			s.free++
			return
		}
		if !w.gone {
			s.held[w.agent]++
			close(w.ready)
			return
		}
	}
}
