package consumers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/fair"
)

// PoolStats counts what a pool did. FullWaits counts the waits of thoughts
// held because their output was refused for want of room.
type PoolStats struct {
	Processed, Skipped, Published, Duplicates, Retried, DeadLettered, RateLimitWaits, FullWaits uint64
}

// Pool runs one stage's workers over its durable consumer. Many pools in many
// processes may share the consumer; JetStream spreads the thoughts among them.
type Pool struct {
	cfg PoolConfig
	// ackPendingSet: MaxAckPending was configured, not derived (see followsAckPending).
	ackPendingSet bool
	js            jetstream.JetStream
	handler       pipeline.Handler
	deliver       step // the stage's work and its publish, wrapped in the pool's middleware
	log           zerolog.Logger

	processed, skipped, published, duplicates, retried, deadLettered, rateLimitWaits, fullWaits atomic.Uint64

	beats heartbeats
	obs   Observer
	limit *Limiter
}

// Observer is told how each delivery of a thought ended, for metrics.
// Outcomes: published, duplicate, skipped, retried, dead_lettered,
// rate_limit_wait, stream_full_wait. out is the stage's output when there is one. Implementations
// must be safe for concurrent use and must not block.
type Observer interface {
	Handled(stage pipeline.Stage, outcome string, delivery uint64, out pipeline.Output)
}

// SetObserver makes o see every delivery. Call it before Run.
func (p *Pool) SetObserver(o Observer) { p.obs = o }

func (p *Pool) observe(outcome string, delivery uint64, out pipeline.Output) {
	if p.obs != nil {
		p.obs.Handled(p.cfg.Stage, outcome, delivery, out)
	}
}

// NewPool builds a pool for cfg.Stage that runs h.
func NewPool(js jetstream.JetStream, cfg PoolConfig, h pipeline.Handler, log zerolog.Logger) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ackPendingSet := cfg.MaxAckPending > 0
	cfg = cfg.withDefaults()
	// A panic in the handler dead-letters its thought with the stack; the worker goes on.
	p := &Pool{cfg: cfg, ackPendingSet: ackPendingSet, js: js, handler: pipeline.Chain(h, pipeline.Recover), log: log.With().Str("stage", string(cfg.Stage)).Logger(),
		limit: NewLimiter(LimiterConfig{Fixed: cfg.Concurrency, Max: cfg.MaxConcurrency, MemoryBudget: cfg.MemoryBudget})}
	p.deliver = chainSteps(p.work, traced(cfg.Stage), p.logged)
	return p, nil
}

// Limit reads the pool's concurrency limit and the thoughts in flight.
func (p *Pool) Limit() LimiterState { return p.limit.State() }

// pullBuffer is how many thoughts the pool's pull keeps at hand: a fixed
// limit's worth, or for an adaptive limit up to 1,024. (With 256, a pool at
// 1,000 thoughts/s that lost its NATS connection for a moment waited out the
// pull's 30 s expiry for a twentieth of its thoughts; thoughts that wait in
// the buffer for a slot are not yet heartbeated, so it stays bounded.)
func (p *Pool) pullBuffer() int {
	if p.cfg.Concurrency > 0 {
		return p.cfg.Concurrency
	}
	return min(p.cfg.MaxConcurrency, 1024)
}

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats {
	return PoolStats{p.processed.Load(), p.skipped.Load(), p.published.Load(), p.duplicates.Load(), p.retried.Load(), p.deadLettered.Load(), p.rateLimitWaits.Load(), p.fullWaits.Load()}
}

// EnsureConsumer creates or updates the pool's durable consumer.
func (p *Pool) EnsureConsumer(ctx context.Context) (jetstream.Consumer, error) {
	var c jetstream.Consumer
	err := retryUnavailable(ctx, "consumer "+string(p.cfg.Stage), func(ctx context.Context) (err error) {
		c, err = p.js.CreateOrUpdateConsumer(ctx, StreamThoughts, p.consumerConfig(ctx))
		return err
	})
	return c, err
}

// Run works until ctx ends, then stops pulling, lets in-flight thoughts finish
// within DrainTimeout, cancels what is left (those thoughts are nak'd for
// another worker) and returns. It returns an error only when the consumer
// cannot be set up.
func (p *Pool) Run(ctx context.Context) error {
	cons, err := p.EnsureConsumer(ctx)
	var it jetstream.MessagesContext
	if err == nil {
		it, err = cons.Messages(jetstream.PullMaxMessages(p.pullBuffer()))
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		// The stream was deleted as the pool started: wait for the guard
		// to set it up again, as a running pool does.
		p.log.Error().Err(err).Msg("stream missing at start; waiting for it to be set up again")
		it, err = p.reopen(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started: nothing was taken
		}
		return fmt.Errorf("consumer %s: %w", p.cfg.Stage, err)
	}
	var itMu sync.Mutex // guards it, which is replaced when the consumer is set up again
	// Work outlives ctx by DrainTimeout.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			itMu.Lock()
			it.Drain()
			itMu.Unlock()
			t := time.NewTimer(p.cfg.DrainTimeout)
			defer t.Stop()
			select {
			case <-t.C:
				cancelWork()
			case <-stopped:
			}
		case <-stopped:
		}
	}()
	go p.beats.run(work, p.cfg.AckWait/3)
	// A pull that was not waiting when the consumer was deleted hears of it
	// only at its next heartbeat; look every 2 s, and stop the iterator so
	// the loop below sets the consumer up again. Every 10 s, an adaptive
	// pool's MaxAckPending follows the live limits.
	go func() {
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
				itMu.Lock()
				it.Stop()
				itMu.Unlock()
			}
		}
	}()
	st := p.limit.State()
	p.log.Info().Bool("adaptive", st.Adaptive).Int("concurrency", st.Limit).Int("max_concurrency", p.cfg.MaxConcurrency).
		Dur("ack_wait", p.cfg.AckWait).Int("max_deliver", p.cfg.MaxDeliver).Msg("pool started")

	// One goroutine pulls and sorts the thoughts into the fair queue; this
	// loop hands them to the stage's work as slots free, by band and in
	// turn between agents (pipeline/fair).
	queue := fair.NewQueue[*pulled](p.pullBuffer())
	fetched := make(chan struct{})
	go func() {
		defer close(fetched)
		p.fetch(ctx, work, queue, func() jetstream.MessagesContext {
			itMu.Lock()
			defer itMu.Unlock()
			return it
		}, func(next jetstream.MessagesContext) {
			itMu.Lock()
			it = next
			if ctx.Err() != nil {
				it.Drain()
			}
			itMu.Unlock()
		})
	}()
	popCtx, stopPop := context.WithCancel(context.Background())
	go func() {
		<-fetched
		stopPop()
	}()
	defer stopPop()

	var wg sync.WaitGroup
	for {
		if p.limit.Acquire(work) != nil {
			break // drained past DrainTimeout
		}
		d, ok := queue.Pop(popCtx)
		if !ok {
			if d, ok = queue.TryPop(); !ok { // the fetcher is done and nothing is left
				p.limit.Release(0)
				break
			}
		}
		if ctx.Err() != nil { // pulled while stopping: give it back at once
			p.beats.remove(d.msg)
			_ = d.msg.Nak()
			p.limit.Release(0)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.limit.Release(p.handle(work, d))
		}()
	}
	for d, ok := queue.TryPop(); ok; d, ok = queue.TryPop() { // stopped past DrainTimeout
		p.beats.remove(d.msg)
		_ = d.msg.Nak()
	}
	<-fetched
	wg.Wait()
	close(stopped)
	p.log.Info().Msg("pool stopped")
	return nil
}

// pulled is a thought as the fetcher pulled and read it.
type pulled struct {
	msg            jetstream.Msg
	seq, delivered uint64
	thought        pipeline.Thought
	err            error // the thought cannot be read
	agent          string
}

// fetch pulls the stage's thoughts until the iterator is drained, reads each
// once (its agent and priority place it in the fair queue) and queues it,
// kept alive by the heartbeats while it waits; a thought this stage has
// nothing to do with is acked at once. It sets the consumer up again when it
// is gone, and naks what it pulls after ctx ends.
func (p *Pool) fetch(ctx, work context.Context, queue *fair.Queue[*pulled], current func() jetstream.MessagesContext, replace func(jetstream.MessagesContext)) {
	for {
		cur := current()
		msg, err := cur.Next()
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
				replace(next)
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
		d := p.read(msg)
		if d == nil {
			continue // skipped
		}
		p.beats.add(msg)
		agent, band := d.agent, fair.Band(d.thought.Priority)
		if p.cfg.FIFO {
			agent, band = "", fair.Normal
		}
		if err := queue.Push(work, agent, band, d); err != nil {
			p.beats.remove(msg)
			_ = msg.Nak()
		}
	}
}

// read reads a pulled message: its delivery count and sequence, the thought
// and whether it is well formed. It acks a thought this stage skips and
// returns nil for it.
func (p *Pool) read(msg jetstream.Msg) *pulled {
	d := &pulled{msg: msg, delivered: 1}
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
		p.skip(msg, d.delivered, p.log.With().Uint64("seq", d.seq).Logger())
		return nil
	}
	d.agent, _ = SubjectAgent(msg.Subject())
	d.thought, d.err = pipeline.DecodeThought(msg.Data(), p.cfg.MaxThoughtBytes)
	if d.err == nil && d.agent != d.thought.AgentID {
		d.err = fmt.Errorf("%w: agent_id %q does not match the subject's agent %q", pipeline.ErrBadInput, d.thought.AgentID, d.agent)
	}
	if d.err == nil && !d.thought.Wants(p.cfg.Stage) {
		p.skip(msg, d.delivered, p.log.With().Uint64("seq", d.seq).Str("event_id", d.thought.EventID).Logger())
		return nil
	}
	return d
}

// reopen sets the pool's consumer up again, once a second until it can (the
// Guard sets a deleted stream up again) or ctx ends.
func (p *Pool) reopen(ctx context.Context) (jetstream.MessagesContext, error) {
	for {
		cons, err := p.js.CreateOrUpdateConsumer(ctx, StreamThoughts, p.consumerConfig(ctx))
		if err == nil {
			var it jetstream.MessagesContext
			if it, err = cons.Messages(jetstream.PullMaxMessages(p.pullBuffer())); err == nil {
				p.log.Warn().Msg("consumer set up again")
				return it, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// handle maps one thought's outcome to ack, nak or dead letter. It returns
// how long the stage's work took when it succeeded, for the limit; else 0.
func (p *Pool) handle(ctx context.Context, in *pulled) (latency time.Duration) {
	msg, seq, delivered, t := in.msg, in.seq, in.delivered, in.thought
	defer p.beats.remove(msg)
	log := p.log.With().Uint64("seq", seq).Uint64("delivery", delivered).Logger()
	if in.err != nil {
		// The thought cannot be read, whichever stage reads it: one letter
		// for all of them (StageInput), written by the first to get there.
		p.deadLetter(ctx, msg, StageInput, seq, delivered, in.err, log)
		return 0
	}
	log = log.With().Str("event_id", t.EventID).Str("agent_id", t.AgentID).Logger()

	d := &delivery{msg: msg, thought: t, delivered: delivered, log: log}
	err := p.deliver(ctx, d)
	out, took, dup := d.out, d.took, d.dup
	p.processed.Add(1)
	switch {
	case err == nil:
		latency = took
		p.ack(msg, log)
		if dup {
			p.observe("duplicate", delivered, out)
		} else {
			p.observe("published", delivered, out)
		}
	case errors.Is(err, pipeline.ErrBadInput) || (errors.Is(err, pipeline.ErrPermanent) && !errors.Is(err, pipeline.ErrTransient)):
		p.deadLetter(ctx, msg, p.cfg.Stage, seq, delivered, err, log)
	case delivered >= uint64(p.cfg.MaxDeliver):
		p.deadLetter(ctx, msg, p.cfg.Stage, seq, delivered, fmt.Errorf("gave up after %d deliveries: %w", delivered, err), log)
	default:
		delay := NakDelay(p.cfg.RetryDelay, delivered)
		if after, ok := pipeline.RetryAfter(err); ok && after > delay {
			delay = min(after, 5*time.Minute) // a provider's Retry-After, or an open breaker's cool-down
		}
		p.retried.Add(1)
		p.observe("retried", delivered, nil)
		log.Warn().Err(err).Dur("retry_in", delay).Msg("stage failed; will retry")
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			log.Warn().Err(nerr).Msg("nak failed; the server will redeliver after ack wait")
		}
	}
	return latency
}

// work is the innermost step of a delivery: the stage's handler, then the
// publish of its transcript, if any, and of its output.
func (p *Pool) work(ctx context.Context, d *delivery) error {
	var err error
	d.out, d.took, err = p.run(ctx, d.thought, d.log)
	if err == nil {
		err = p.publishTranscript(ctx, &d.thought, d.out, d.msg)
	}
	if err == nil {
		d.dup, err = p.publish(ctx, &d.thought, d.out, d.msg, d.log)
	}
	return err
}

// run calls the handler with a fresh call budget, and again after a rate
// limit's Retry-After while the pool's patience lasts. It returns how long
// the last call took. A rate limit or a deadline tells the pool's limit
// that the work behind it is pushing back.
func (p *Pool) run(ctx context.Context, t pipeline.Thought, log zerolog.Logger) (pipeline.Output, time.Duration, error) {
	started := time.Now()
	for {
		hctx := ctx
		if !p.cfg.FIFO {
			hctx = pipeline.WithTenant(ctx, pipeline.Tenant{Agent: t.AgentID, Priority: t.Priority})
		}
		hctx, _ = pipeline.WithCallBudget(hctx, p.cfg.CallBudget)
		called := time.Now()
		out, err := p.handler(hctx, t)
		took := time.Since(called)
		if errors.Is(err, context.DeadlineExceeded) {
			p.limit.Drop()
		}
		if err == nil || !errors.Is(err, pipeline.ErrRateLimited) {
			return out, took, err
		}
		if !errors.Is(err, pipeline.ErrQuota) { // an agent's own quota is not the provider pushing back
			p.limit.Drop()
		}
		after, ok := pipeline.RetryAfter(err)
		if !ok {
			after = p.cfg.RetryDelay
		}
		after += rand.N(after/2 + 1) // held thoughts do not all come back in the same instant
		if time.Since(started)+after > p.cfg.RateLimitPatience {
			return out, 0, fmt.Errorf("rate limited for longer than %s: %w", p.cfg.RateLimitPatience, err)
		}
		p.rateLimitWaits.Add(1)
		p.observe("rate_limit_wait", 0, nil)
		log.Debug().Dur("retry_after", after).Msg("rate limited; holding the thought and trying again")
		timer := time.NewTimer(after)
		select {
		case <-ctx.Done():
			timer.Stop()
			return out, 0, err
		case <-timer.C:
		}
	}
}

// ack acknowledges a thought whose outputs the stream has stored (their
// PubAcks came back) or that needs none. It is a plain ack, not a double
// ack that waits for the server's confirmation: an ack lost on the way is a
// redelivery after the ack wait, whose outputs the outputs stream drops as
// duplicates (their message ids are the same), so waiting bought nothing but
// a round trip per thought. Measured: cache hits 5,210 -> 5,937 thoughts/s
// (docs/performance.md).
func (p *Pool) ack(msg jetstream.Msg, log zerolog.Logger) {
	if err := msg.Ack(); err != nil {
		log.Warn().Err(err).Msg("ack not sent; the thought will be redelivered and its outputs dropped as duplicates")
	}
}

// deadLetter stores the message as stage's dead letter and terminates it.
// If the letter cannot be stored (the DLQ is full, NATS is away), the message
// is nak'd instead, so it is never lost; on its last delivery the reaper
// stores its letter once there is room.
func (p *Pool) deadLetter(ctx context.Context, msg jetstream.Msg, stage pipeline.Stage, seq, delivered uint64, cause error, log zerolog.Logger) {
	l := Letter{Stage: stage, Subject: msg.Subject(), Seq: seq, Attempts: delivered, Reason: cause.Error(), Data: msg.Data(), Header: msg.Headers()}
	var partial *pipeline.PartialError
	if errors.As(cause, &partial) {
		l.Transcript = partial.Transcript
	}
	if err := StoreLetter(ctx, p.js, l); err != nil {
		log.Error().Err(err).Str("reason", l.Reason).Msg("dead letter not stored; the thought will be redelivered")
		_ = msg.NakWithDelay(NakDelay(p.cfg.RetryDelay, delivered))
		return
	}
	p.deadLettered.Add(1)
	p.observe("dead_lettered", delivered, nil)
	log.Warn().Str("reason", l.Reason).Msg("thought dead-lettered")
	if err := msg.TermWithReason(clipBytes(l.Reason, 256)); err != nil {
		log.Warn().Err(err).Msg("term not sent; the server may redeliver, and the dead letter is deduplicated")
	}
}

// skip acknowledges a thought this stage has nothing to do with.
func (p *Pool) skip(msg jetstream.Msg, delivered uint64, log zerolog.Logger) {
	p.skipped.Add(1)
	p.observe("skipped", delivered, nil)
	p.ack(msg, log)
}
