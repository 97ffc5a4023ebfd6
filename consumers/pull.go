package consumers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/fair"
	"github.com/noesis-dev/noesis/pipeline/retry"
)

// source is the pool's pull iterator, replaced when the consumer is set up
// again; it is safe for concurrent use.
type source struct {
	mu      sync.Mutex
	it      jetstream.MessagesContext
	drained bool // the pool is stopping: a replacement is drained at once
}

func (s *source) current() jetstream.MessagesContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.it
}

// replace makes next the iterator, drained at once if the pool is stopping.
func (s *source) replace(next jetstream.MessagesContext) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.it = next
	if s.drained {
		s.it.Drain()
	}
}

// drain stops the iterator's pulls; what it already holds is still delivered.
func (s *source) drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drained = true
	s.it.Drain()
}

// stop closes the iterator, so the puller sets the consumer up again.
func (s *source) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.it.Stop()
}

// open sets the pool's consumer up and starts pulling. When the stream was
// deleted as the pool started, it waits for the guard to set it up again, as
// a running pool does.
func (p *Pool) open(ctx context.Context) (*source, error) {
	cons, err := p.EnsureConsumer(ctx)
	var it jetstream.MessagesContext
	if err == nil {
		it, err = p.messages(cons)
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		p.log.Error().Err(err).Msg("stream missing at start; waiting for it to be set up again")
		it, err = p.reopen(ctx)
	}
	if err != nil {
		return nil, err
	}
	return &source{it: it}, nil
}

// PullHeartbeat is how often the server tells a waiting pull it is still
// there. nats.go's iterator can be left with no pull request at the server
// while it counts one outstanding (a refill skipped while an earlier request
// was still being sent, seen under load here with 40,000 thoughts queued:
// num_waiting 0, num_pending 29,725, no delivery); it only asks again once
// two heartbeats are missed. With the default (half the pull's 30 s expiry)
// the pool stood still for 30 s; with 1 s it recovered in 2 s. The puller
// now wakes the iterator every NextWait, which sends the skipped request
// sooner; the heartbeat stays the backstop.
const PullHeartbeat = time.Second

// NextWait is the longest the puller waits in one call of the iterator's
// Next before it calls it again. nats.go's iterator sends its next pull
// request only from inside Next, each time a message, a status or an error
// wakes it, and skips it while an earlier request is still being sent; the
// refill it skipped that way waited for the next wake-up, which with no
// request at the server was two missed heartbeats (2 s). A Next that returns
// after NextWait and is called again sends it then.
const NextWait = 200 * time.Millisecond

// messages starts pulling cons's thoughts, up to the pool's pull buffer at once.
func (p *Pool) messages(cons jetstream.Consumer) (jetstream.MessagesContext, error) {
	return cons.Messages(jetstream.PullMaxMessages(p.pullBuffer()), jetstream.PullHeartbeat(PullHeartbeat))
}

// reopen sets the pool's consumer up again, once a second until it can (the
// Guard sets a deleted stream up again) or ctx ends.
func (p *Pool) reopen(ctx context.Context) (jetstream.MessagesContext, error) {
	everySecond := retry.Policy{Initial: time.Second, Max: time.Second, Multiplier: 1}
	it, err := retry.Do(ctx, everySecond, func() (jetstream.MessagesContext, error) {
		cons, err := p.js.CreateOrUpdateConsumer(ctx, StreamThoughts, p.consumerConfig(ctx))
		if err != nil {
			return nil, err
		}
		return p.messages(cons)
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	p.log.Warn().Msg("consumer set up again")
	return it, nil
}

// drain waits for ctx to end, then stops the pulls and gives the work in
// flight DrainTimeout to finish before it cancels it (cancelWork). It
// returns when work ends.
func (p *Pool) drain(ctx, work context.Context, src *source, cancelWork context.CancelFunc) {
	select {
	case <-ctx.Done():
	case <-work.Done():
		return
	}
	src.drain()
	t := time.NewTimer(p.cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-t.C:
		cancelWork()
	case <-work.Done():
	}
}

// watchConsumer looks every 2 s whether the pool's consumer is still there:
// a pull that was not waiting when the consumer was deleted hears of it only
// at its next heartbeat, so it stops the iterator and the puller sets the
// consumer up again. Every 10 s, an adaptive pool's MaxAckPending follows
// the live limits. It returns when ctx ends.
func (p *Pool) watchConsumer(ctx context.Context, src *source) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n%5 == 0 && p.followsAckPending() {
			if _, err := p.followAckPending(ctx); err != nil && ctx.Err() == nil {
				p.log.Debug().Err(err).Msg("max ack pending not updated")
			}
		}
		_, err := p.js.Consumer(ctx, StreamThoughts, string(p.cfg.Stage))
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			src.stop()
		}
	}
}

// pull pulls the stage's thoughts until the iterator is drained, reads each
// once (its agent and priority place it in the fair queue) and queues it,
// kept alive by the heartbeats while it waits; a thought this stage has
// nothing to do with is acked at once. It sets the consumer up again when it
// is gone, and naks what it pulls after ctx ends.
func (p *Pool) pull(ctx, work context.Context, src *source, queue *fair.Queue[*delivery]) {
	for {
		cur := src.current()
		msg, err := cur.Next(jetstream.NextMaxWait(NextWait))
		if errors.Is(err, nats.ErrTimeout) {
			continue // nothing in NextWait: Next again, which asks again if it must
		}
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				// The consumer is gone (its stream was deleted?): set it up again.
				p.log.Error().Err(err).Msg("consumer gone; setting it up again")
				cur.Stop()
				next, rerr := p.reopen(ctx)
				if rerr != nil {
					return // ctx ended
				}
				src.replace(next)
				continue
			}
			p.log.Warn().Err(err).Msg("pull failed; retrying")
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if ctx.Err() != nil { // pulled while stopping: give it back at once
			_ = msg.Nak()
			continue
		}
		if d := p.read(msg); d != nil {
			p.enqueue(work, queue, d)
		}
	}
}

// enqueue puts d in the fair queue, kept alive by the heartbeats while it
// waits, or naks it when work ends first.
func (p *Pool) enqueue(work context.Context, queue *fair.Queue[*delivery], d *delivery) {
	p.beats.add(d.msg)
	agent, band := d.agent, fair.Band(d.thought.Priority)
	if p.cfg.FIFO {
		agent, band = "", fair.Normal
	}
	if err := queue.Push(work, agent, band, d); err != nil {
		p.giveBack(d.msg)
	}
}

// read reads a pulled message: its delivery count and sequence, the thought
// and whether it is well formed. It acks a thought this stage skips and
// returns nil for it.
func (p *Pool) read(msg jetstream.Msg) *delivery {
	d := &delivery{msg: msg, delivered: 1, base: &p.log}
	if md, err := msg.Metadata(); err == nil {
		d.delivered, d.seq = md.NumDelivered, md.Sequence.Stream
	}
	// A replay is for one stage: the others skip it, even when it cannot be
	// decoded. Noesis-* headers count only on the replay subject, which only
	// NOESIS_REPLAYS (where only operators may publish) brings into the
	// thoughts stream; on an agent's thought they are ignored.
	only := ""
	if strings.HasPrefix(msg.Subject(), ReplayPrefix) {
		only = msg.Headers().Get(HeaderOnlyStage)
	}
	if only != "" && only != string(p.cfg.Stage) {
		p.skip(d, "")
		return nil
	}
	d.agent, _ = SubjectAgent(msg.Subject())
	d.thought, d.err = pipeline.DecodeThought(msg.Data(), p.cfg.MaxThoughtBytes)
	switch {
	case d.err == nil && !pipeline.ValidToken(d.agent): // noesis.thoughts.a.b: more than the agent's one token
		d.err = fmt.Errorf("%w: subject %q is not noesis.thoughts.<agent_id> (one token, the thought's agent_id): publish agent %q's thoughts on %s",
			pipeline.ErrBadInput, msg.Subject(), d.thought.AgentID, ThoughtSubject(d.thought.AgentID))
	case d.err == nil && d.agent != d.thought.AgentID:
		d.err = fmt.Errorf("%w: agent_id %q does not match the subject's agent %q", pipeline.ErrBadInput, d.thought.AgentID, d.agent)
	}
	if d.err == nil && !d.thought.Wants(p.cfg.Stage) {
		p.skip(d, d.thought.EventID)
		return nil
	}
	return d
}

// skip acknowledges a thought this stage has nothing to do with.
func (p *Pool) skip(d *delivery, eventID string) {
	p.tally.add(outcomeSkipped, d.delivered, nil)
	if err := d.msg.Ack(); err != nil {
		log := p.log.With().Uint64("seq", d.seq)
		if eventID != "" {
			log = log.Str("event_id", eventID)
		}
		l := log.Logger()
		l.Warn().Err(err).Msg("ack not sent; the thought will be redelivered and its outputs dropped as duplicates")
	}
}
