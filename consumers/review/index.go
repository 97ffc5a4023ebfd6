package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Index follows NOESIS_REVIEWS and keeps a Summary of every review in it,
// with its decision once there is one: the list a reviewer sees, live. It
// keeps no thought or verdict (Desk.Review reads those). Its methods are
// safe for concurrent use; Run feeds it.
type Index struct {
	js jetstream.JetStream

	mu      sync.Mutex
	reviews map[string]*Summary
	early   map[string]Ruling // decisions read before their review (a review aged out first)
	changed chan struct{}     // closed and replaced at every change
	ready   chan struct{}     // closed once the stream has been read to its end
	once    sync.Once
}

// NewIndex returns an empty index; Run fills it.
func NewIndex(js jetstream.JetStream) *Index {
	return &Index{js: js, reviews: map[string]*Summary{}, early: map[string]Ruling{},
		changed: make(chan struct{}), ready: make(chan struct{})}
}

// Load reads NOESIS_REVIEWS to its end and returns the index, for a
// one-off list. A stream not set up yet is an empty list.
func Load(ctx context.Context, js jetstream.JetStream) (*Index, error) {
	x := NewIndex(js)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- x.follow(rctx, false) }()
	select {
	case <-x.ready:
		cancel()
		<-errc
		return x, nil
	case err := <-errc:
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
}

// Run follows the stream from its first message until ctx ends, waiting
// for it to be set up when it is not yet; Ready is closed once what the
// stream held at the start is read. It returns nil when ctx ends, or the
// error that stopped it (a permission).
func (x *Index) Run(ctx context.Context) error { return x.follow(ctx, true) }

// Ready is closed once the index holds what the stream held when Run began.
func (x *Index) Ready() <-chan struct{} { return x.ready }

// Changed returns a channel closed at the next change: a review queued or
// decided.
func (x *Index) Changed() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.changed
}

// List returns every review the index holds, oldest first; with waiting,
// only those without a decision.
func (x *Index) List(waiting bool) []Summary {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]Summary, 0, len(x.reviews))
	for _, s := range x.reviews {
		if !waiting || s.Waiting() {
			out = append(out, *s)
		}
	}
	slices.SortFunc(out, func(a, b Summary) int {
		if c := a.QueuedAt.Compare(b.QueuedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Waiting returns how many reviews wait for a decision and when the oldest
// of them was queued (zero when none waits).
func (x *Index) Waiting() (n int, oldest time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range x.reviews {
		if s.Waiting() {
			n++
			if oldest.IsZero() || s.QueuedAt.Before(oldest) {
				oldest = s.QueuedAt
			}
		}
	}
	return n, oldest
}

// follow reads the stream with an ordered consumer (which resumes where it
// was after a reconnect). With wait, a missing stream is waited for.
func (x *Index) follow(ctx context.Context, wait bool) error {
	var cons jetstream.Consumer
	for {
		s, err := x.js.Stream(ctx, Stream)
		if err == nil {
			if s.CachedInfo().State.Msgs == 0 {
				x.once.Do(func() { close(x.ready) })
			}
			cons, err = x.js.OrderedConsumer(ctx, Stream, jetstream.OrderedConsumerConfig{InactiveThreshold: 30 * time.Second})
		}
		if err == nil {
			break
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) && !wait {
			x.once.Do(func() { close(x.ready) })
			<-ctx.Done()
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) && !transient(err) {
			return fmt.Errorf("read %s: %w", Stream, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read %s: %w", Stream, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer func() { // the server would drop it after 30 s idle; a list run every second would pile them up
		it.Stop()
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = x.js.DeleteConsumer(dctx, Stream, info.Name)
			cancel()
		}
	}()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read %s: %w", Stream, err)
		}
		x.apply(msg.Subject(), msg.Data())
		if md, err := msg.Metadata(); err == nil && md.NumPending == 0 {
			x.once.Do(func() { close(x.ready) })
		}
	}
}

// apply takes one message of the stream into the index.
func (x *Index) apply(subject string, data []byte) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if strings.HasPrefix(subject, QueuedPrefix) {
		var r Review
		if json.Unmarshal(data, &r) != nil || !ValidID(r.ID) {
			return
		}
		s := &Summary{ID: r.ID, EventID: r.EventID, AgentID: r.AgentID, VerdictDecision: r.VerdictDecision, QueuedAt: r.QueuedAt}
		if d, ok := x.early[r.ID]; ok {
			s.Decided = &d
			delete(x.early, r.ID)
		}
		x.reviews[r.ID] = s
	} else if strings.HasPrefix(subject, DecidedPrefix) {
		var d Ruling
		if json.Unmarshal(data, &d) != nil {
			return
		}
		id := subject[strings.LastIndexByte(subject, '.')+1:]
		if s, ok := x.reviews[id]; ok {
			s.Decided = &d
		} else {
			x.early[id] = d
		}
	}
	close(x.changed)
	x.changed = make(chan struct{})
}
