package fair

import (
	"context"
	"sync"
)

// Queue holds items (the thoughts a pool has pulled, the calls waiting for a
// model's slot) and hands them out by band, most urgent first, and within a band in turn
// between agents: each agent with thoughts waiting gets one before any gets a
// second (round robin, as llm-d's flow control does between tenants). One
// agent's flood therefore waits behind itself, not in front of the others.
// It holds at most cap items: Push waits for room. Safe for concurrent use.
type Queue[T any] struct {
	mu     sync.Mutex
	bands  [bands]band[T]
	n, cap int
	more   chan struct{} // signalled when an item arrives
	room   chan struct{} // signalled when an item leaves
}

// band is one band: a FIFO per agent and the ring of agents that have
// items, served in turn from next.
type band[T any] struct {
	queues map[string][]T
	ring   []string
	next   int
}

// NewQueue returns a queue of at most capacity items (at least 1).
func NewQueue[T any](capacity int) *Queue[T] {
	q := &Queue[T]{cap: max(capacity, 1), more: make(chan struct{}, 1), room: make(chan struct{}, 1)}
	for i := range q.bands {
		q.bands[i].queues = map[string][]T{}
	}
	return q
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Push adds item for agent in band b, waiting while the queue is full. It
// returns ctx's error if ctx ends first.
func (q *Queue[T]) Push(ctx context.Context, agent string, b int, item T) error {
	for {
		q.mu.Lock()
		if q.n < q.cap {
			fb := &q.bands[b]
			if len(fb.queues[agent]) == 0 {
				fb.ring = append(fb.ring, agent)
			}
			fb.queues[agent] = append(fb.queues[agent], item)
			q.n++
			q.mu.Unlock()
			signal(q.more)
			return nil
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-q.room:
		}
	}
}

// Pop takes the next item: from the most urgent band that has one, from the
// agent whose turn it is there. It waits while the queue is empty and
// returns false if ctx ends first.
func (q *Queue[T]) Pop(ctx context.Context) (T, bool) {
	for {
		if item, ok := q.TryPop(); ok {
			return item, true
		}
		select {
		case <-ctx.Done():
			var zero T
			return zero, false
		case <-q.more:
		}
	}
}

// Wait waits until the queue holds an item or ctx ends, and reports whether
// it holds one. With one goroutine popping, the item is still there for it.
func (q *Queue[T]) Wait(ctx context.Context) bool {
	for {
		if q.Len() > 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return q.Len() > 0
		case <-q.more:
		}
	}
}

// TryPop is Pop without waiting.
func (q *Queue[T]) TryPop() (T, bool) { return q.tryPopBy(nil) }

// tryPopBy pops from the most urgent band that has items; within it, from
// the agent with the lowest load (nil: every agent's is the same), and among
// agents of the same load from the one whose turn it is.
func (q *Queue[T]) tryPopBy(load func(agent string) int) (T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for b := range q.bands {
		fb := &q.bands[b]
		if len(fb.ring) == 0 {
			continue
		}
		if fb.next >= len(fb.ring) {
			fb.next = 0
		}
		at := fb.next
		if load != nil {
			best := load(fb.ring[at])
			for i := 1; i < len(fb.ring) && best > 0; i++ {
				j := (fb.next + i) % len(fb.ring)
				if l := load(fb.ring[j]); l < best {
					at, best = j, l
				}
			}
		}
		agent := fb.ring[at]
		items := fb.queues[agent]
		item := items[0]
		var zero T
		items[0] = zero // let the item go
		if len(items) == 1 {
			delete(fb.queues, agent)
			fb.ring = append(fb.ring[:at], fb.ring[at+1:]...)
			if at < fb.next {
				fb.next--
			}
			// next now points at the agent after the one served when it was next.
		} else {
			fb.queues[agent] = items[1:]
			if at == fb.next {
				fb.next++
			}
		}
		q.n--
		signal(q.room)
		if q.n > 0 {
			signal(q.more)
		}
		return item, true
	}
	var zero T
	return zero, false
}

// Len is how many items wait.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
