package consumers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// FetchMaxWait is how long one of a fetcher's pull requests waits at the
// server for its batch to fill. It bounds how long Drain takes to end the
// pulls, and an idle consumer sees one request this often.
const FetchMaxWait = time.Second

// fetcher is the pool's pull: an iterator over its consumer's thoughts
// (a jetstream.MessagesContext, so the puller reads it as it read nats.go's
// Messages) built on Fetch, one pull request at a time.
//
// nats.go's Messages iterator keeps a request at the server by counting the
// messages it asked for; it refills in Next, and skips the refill while an
// earlier request is still being sent. Under load the pool was left with no
// request at the server while the iterator counted one outstanding
// (num_waiting 0, num_pending 29,725, num_ack_pending 0) until two
// heartbeats were missed. A fetcher has no such count: its next request goes
// out when Next finds the last batch ended (full, or its FetchMaxWait over),
// so some request is always at the server while Next waits, and a lost one
// ends on nats.go's own timer a second past its wait.
//
// Each batch is for the room its caller has: max less what the caller holds
// (held; nil: nothing), so what was fetched and not yet worked on stays
// within max, and every thought goes from its batch straight into the fair
// queue, where heartbeats keep it alive. When less than half of max is free,
// Next waits for a signal on freed (the queue gave a thought up) until half
// is, so that a full queue is refilled in batches of half, not one by one.
//
// Drain: no new request, and the current one ends at once (its subscription
// goes); Next returns what the batch had already received, then
// ErrMsgIteratorClosed. Stop: no new
// request; Next returns ErrMsgIteratorClosed at once, after nak'ing what the
// current batch holds (what reaches it later is redelivered after AckWait;
// a pool stops its fetcher only when its consumer is gone).
//
// Next is for one goroutine; Stop and Drain may be called from any, more
// than once.
type fetcher struct {
	cons  jetstream.Consumer
	max   int
	held  func() int
	freed <-chan struct{}

	batch  jetstream.MessageBatch // the current request's; nil: none
	msgs   <-chan jetstream.Msg   // batch's messages
	cancel context.CancelFunc     // ends the current request

	// ended is cancelled by Stop and Drain: the current request's
	// subscription goes at once, so no thought reaches a stopping pool
	// after its last Next (one it naks would otherwise come back to its
	// own open request, again and again, until its deliveries ran out).
	ended    context.Context
	endPulls context.CancelFunc

	stopped, draining   chan struct{}
	stopOnce, drainOnce sync.Once
}

var _ jetstream.MessagesContext = (*fetcher)(nil)

// NewFetcher returns an iterator over cons's messages that pulls them as a
// pool does: one Fetch at a time, each for up to most messages (at least 1),
// waiting FetchMaxWait at most. Next returns ErrMsgIteratorClosed once
// stopped or drained, ErrConsumerDeleted or an error that wraps
// ErrConsumerNotFound when the consumer (or its stream) is gone, and a
// failed request's error otherwise (the next call asks again). Next is for
// one goroutine; Stop and Drain are safe for concurrent use.
func NewFetcher(cons jetstream.Consumer, most int) jetstream.MessagesContext {
	return newFetcher(cons, most, nil, nil)
}

// newFetcher is NewFetcher for a caller that holds held() of what it was
// given and signals freed when it gives one up (see fetcher).
func newFetcher(cons jetstream.Consumer, most int, held func() int, freed <-chan struct{}) *fetcher {
	ended, endPulls := context.WithCancel(context.Background())
	return &fetcher{cons: cons, max: max(most, 1), held: held, freed: freed, ended: ended, endPulls: endPulls,
		stopped: make(chan struct{}), draining: make(chan struct{})}
}

// Next returns the consumer's next message, waiting for it; see NewFetcher
// for its errors. It takes no options.
func (f *fetcher) Next(opts ...jetstream.NextOpt) (jetstream.Msg, error) {
	if len(opts) > 0 {
		return nil, fmt.Errorf("%w: a fetcher's Next takes no options", jetstream.ErrInvalidOption)
	}
	for {
		if isClosed(f.stopped) {
			f.abandon()
			return nil, jetstream.ErrMsgIteratorClosed
		}
		if f.msgs == nil {
			n, ok := f.room()
			if !ok {
				return nil, jetstream.ErrMsgIteratorClosed
			}
			ctx, cancel := context.WithTimeout(f.ended, FetchMaxWait)
			batch, err := f.cons.Fetch(n, jetstream.FetchContext(ctx))
			if err != nil {
				cancel()
				if f.ended.Err() != nil {
					return nil, jetstream.ErrMsgIteratorClosed
				}
				return nil, err
			}
			f.batch, f.msgs, f.cancel = batch, batch.Messages(), cancel
		}
		select {
		case <-f.stopped:
		case msg, ok := <-f.msgs:
			if ok {
				return msg, nil
			}
			err := f.batch.Error()
			f.cancel()
			f.batch, f.msgs, f.cancel = nil, nil, nil
			if err != nil && f.ended.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
				return nil, f.gone(err)
			}
		}
	}
}

// room waits until the caller has room for half of max, or any room when
// nothing tells it of freed places, and returns how much; false when the
// fetcher is stopped or drained first.
func (f *fetcher) room() (int, bool) {
	for {
		if isClosed(f.draining) || isClosed(f.stopped) {
			return 0, false
		}
		free := f.max
		if f.held != nil {
			free -= f.held()
		}
		if free >= (f.max+1)/2 || (f.freed == nil && free > 0) {
			return free, true
		}
		if f.freed == nil {
			return 1, true
		}
		select {
		case <-f.freed:
		case <-f.stopped:
		case <-f.draining:
		}
	}
}

// gone maps a failed batch's error: a pull request to a consumer that is
// not there finds no responder, which is told apart from a consumer leader
// not yet elected by asking for the consumer's info.
func (f *fetcher) gone(err error) error {
	if !errors.Is(err, nats.ErrNoResponders) {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, ierr := f.cons.Info(ctx); errors.Is(ierr, jetstream.ErrConsumerNotFound) || errors.Is(ierr, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: %w", jetstream.ErrConsumerNotFound, ierr)
	}
	return err
}

// abandon naks what the current batch holds and lets it go.
func (f *fetcher) abandon() {
	for f.msgs != nil {
		select {
		case msg, ok := <-f.msgs:
			if !ok {
				f.cancel()
				f.batch, f.msgs, f.cancel = nil, nil, nil
				return
			}
			_ = msg.Nak()
		default:
			f.cancel()
			f.batch, f.msgs, f.cancel = nil, nil, nil
		}
	}
}

// Stop ends the pulls at once; see fetcher.
func (f *fetcher) Stop() { f.stopOnce.Do(func() { f.endPulls(); close(f.stopped) }) }

// Drain ends the pulls once the current batch has ended; see fetcher.
func (f *fetcher) Drain() { f.drainOnce.Do(func() { f.endPulls(); close(f.draining) }) }

// isClosed reports whether c is closed.
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
