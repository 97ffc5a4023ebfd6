package consumers

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// heartbeats keeps every thought in flight alive with one goroutine per pool,
// not one per thought: every AckWait/3 it tells the server that each thought
// held that long is still being worked on.
type heartbeats struct {
	mu       sync.Mutex
	inflight map[jetstream.Msg]time.Time // last beat (or start)
}

// add starts keeping m alive.
func (h *heartbeats) add(m jetstream.Msg) {
	h.mu.Lock()
	if h.inflight == nil {
		h.inflight = map[jetstream.Msg]time.Time{}
	}
	h.inflight[m] = time.Now()
	h.mu.Unlock()
}

// remove stops keeping m alive.
func (h *heartbeats) remove(m jetstream.Msg) {
	h.mu.Lock()
	delete(h.inflight, m)
	h.mu.Unlock()
}

// run beats for the held thoughts until ctx ends; Run waits for it.
func (h *heartbeats) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every / 4)
	defer t.Stop()
	var due []jetstream.Msg
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due = due[:0]
			h.mu.Lock()
			for m, last := range h.inflight {
				if now.Sub(last) >= every {
					due = append(due, m)
					h.inflight[m] = now
				}
			}
			h.mu.Unlock()
			for _, m := range due {
				_ = m.InProgress()
			}
		}
	}
}
