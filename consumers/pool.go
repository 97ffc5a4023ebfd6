package consumers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers/adaptive"
	"github.com/noesis-dev/noesis/consumers/setup"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/fair"
	"github.com/noesis-dev/noesis/pipeline/stack"
)

// Pool runs one stage's workers over its durable consumer. Many pools in many
// processes may share the consumer; JetStream spreads the thoughts among them.
//
// One thought's way, read top to bottom in this file: Run starts the puller
// (pull.go), which reads each thought and queues it fairly; dispatch hands
// the queued thoughts to process as the limit frees slots; process runs the
// chain built in NewPool (the dead-letter decision, counting, tracing, the
// output's log line, recovery, the rate-limit hold) around produce, which
// runs the stage and publishes its output (after its transcript and, for a
// verdict that requires a person, its review); settle then acks, naks or terms
// the thought's message as the chain decided.
type Pool struct {
	cfg PoolConfig
	// ackPendingSet: MaxAckPending was configured, not derived (see followsAckPending).
	ackPendingSet bool
	js            jetstream.JetStream
	stageWork     pipeline.Handler // the stage's own work (a Bridge's, Tribunal's or Analyst's Process)
	reviews       ReviewQueue      // where verdicts that require a person are queued (reviews.go); nil: nowhere
	chain         handlerFunc      // produce wrapped in the pool's middleware
	log           zerolog.Logger
	tally         *tally
	beats         heartbeats
	watches       watches       // the progress lines of the stages at work (outlog.go)
	acks          *ackDeadlines // the publishes' waits for their PubAcks: the run's, made by Run
	limit         *adaptive.Concurrency
}

// PoolOption gives a pool an optional dependency at construction.
type PoolOption func(*Pool)

// WithObserver makes o see how every delivery of the pool's thoughts ended.
func WithObserver(o DeliveryObserver) PoolOption {
	return func(p *Pool) { p.tally.obs = o }
}

// NewPool builds a pool for cfg.Stage that runs h, the stage's work, on each
// thought. It returns cfg's error when cfg is not valid.
func NewPool(js jetstream.JetStream, cfg PoolConfig, h pipeline.Handler, log zerolog.Logger, opts ...PoolOption) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ackPendingSet := cfg.MaxAckPending > 0
	cfg = cfg.withDefaults()
	p := &Pool{cfg: cfg, ackPendingSet: ackPendingSet, js: js, stageWork: h, log: log.With().Str("stage", string(cfg.Stage)).Logger(),
		tally: newTally(cfg.Stage), watches: watches{every: cfg.ProgressEvery},
		limit: adaptive.New(adaptive.Config{Fixed: cfg.Concurrency, Max: cfg.MaxConcurrency, MemoryBudget: cfg.MemoryBudget})}
	for _, o := range opts {
		o(p)
	}
	// The middleware, outermost first.
	p.chain = wrap(p.produce,
		p.decided,         // the error decides: ack, nak after a delay, or dead letter (decide.go)
		p.tally.counted,   // counts the delivery and tells the observer (tally.go)
		traced(cfg.Stage), // a span per delivery, covering the publish (trace.go)
		p.logged,          // the output's log line and the progress lines (outlog.go)
		recovered,         // a panic is an error that dead-letters its thought (recover.go)
		p.held,            // a rate-limited thought is held and tried again (hold.go)
	)
	return p, nil
}

// Limit reads the pool's concurrency limit and the thoughts in flight.
func (p *Pool) Limit() adaptive.Reading { return p.limit.State() }

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats { return p.tally.stats() }

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

// EnsureConsumer creates or updates the pool's durable consumer.
func (p *Pool) EnsureConsumer(ctx context.Context) (jetstream.Consumer, error) {
	var c jetstream.Consumer
	err := setup.Do(ctx, "consumer "+string(p.cfg.Stage), func(ctx context.Context) (err error) {
		c, err = p.js.CreateOrUpdateConsumer(ctx, StreamThoughts, p.consumerConfig(ctx))
		return err
	})
	return c, err
}

// Run works until ctx ends, then stops pulling, lets in-flight thoughts finish
// within DrainTimeout, cancels what is left (those thoughts are nak'd for
// another worker) and returns once every goroutine it started has ended. It
// returns an error only when the consumer cannot be set up.
func (p *Pool) Run(ctx context.Context) error {
	src, err := p.open(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started: nothing was taken
		}
		return fmt.Errorf("consumer %s: %w", p.cfg.Stage, err)
	}
	// Work outlives ctx by DrainTimeout.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	queue := fair.NewQueue[*delivery](p.pullBuffer())
	pulling, stopPulling := context.WithCancel(context.Background()) // ends when the puller is done
	defer stopPulling()
	p.acks = newAckDeadlines(work.Done())
	var bg sync.WaitGroup
	bg.Go(func() { defer stopPulling(); p.pull(ctx, work, src, queue) })
	bg.Go(func() { p.drain(ctx, work, src, cancelWork) })
	bg.Go(func() { p.beats.run(work, p.cfg.AckWait/3) })
	bg.Go(func() { p.watches.run(work) })
	bg.Go(func() { p.watchConsumer(ctx, src) })
	st := p.limit.State()
	p.log.Info().Bool("adaptive", st.Adaptive).Int("concurrency", st.Limit).Int("max_concurrency", p.cfg.MaxConcurrency).
		Dur("ack_wait", p.cfg.AckWait).Int("max_deliver", p.cfg.MaxDeliver).Msg("pool started")

	var inflight sync.WaitGroup
	p.dispatch(ctx, work, pulling, queue, &inflight)
	<-pulling.Done()
	for d, ok := queue.TryPop(); ok; d, ok = queue.TryPop() { // stopped past DrainTimeout
		p.giveBack(d.msg)
	}
	inflight.Wait()
	cancelWork() // ends the heartbeats and the drain's wait
	bg.Wait()
	p.log.Info().Msg("pool stopped")
	return nil
}

// dispatch hands the queued thoughts to process as the limit frees slots, by
// band and in turn between agents (pipeline/fair), until the puller is done
// (pulling ends) and the queue is empty, or work ends (drained past
// DrainTimeout). Thoughts taken after ctx ends are given back at once.
//
// It waits for a thought before it takes a slot, not holding one while
// nothing waits: a thought held for its agent's quota gives its slot back
// and takes one again (held), which a dispatcher holding the last slot idle
// kept from it until another thought came (with one slot, for ever).
func (p *Pool) dispatch(ctx, work, pulling context.Context, queue *fair.Queue[*delivery], inflight *sync.WaitGroup) {
	for {
		if !queue.Wait(pulling) { // the puller is done and nothing is left
			return
		}
		if p.limit.Acquire(work) != nil {
			return // drained past DrainTimeout
		}
		d, ok := queue.TryPop() // the thought whose turn it is now that a slot is free
		if !ok {
			p.limit.Release(0)
			continue
		}
		if ctx.Err() != nil { // pulled while stopping: give it back at once
			p.giveBack(d.msg)
			p.limit.Release(0)
			continue
		}
		inflight.Go(func() {
			stack.Grow() // one copy now, not one at each depth the chain and the stage reach
			p.limit.Release(p.process(work, d))
		})
	}
}

// giveBack naks a pulled thought the pool will not work on, for another worker.
func (p *Pool) giveBack(msg jetstream.Msg) {
	p.beats.remove(msg)
	_ = msg.Nak()
}

// process runs one delivery through the chain and settles its message. It
// returns how long the stage's work and the publish of its outputs took
// when the thought was acked, for the limit; else 0. The publish counts: a
// stream slow to confirm is pushback too. Timed without it, answers from
// the cache took microseconds however many were in flight, and the limits
// grew to 3,600-4,096 a pool, thousands of goroutines the collector scanned
// for nothing (bench pipeline --mode cache: 3,470-4,869 thoughts/s at those
// limits, 4,639-4,906 at the 250-1,300 timed with the publish).
func (p *Pool) process(ctx context.Context, d *delivery) time.Duration {
	defer p.beats.remove(d.msg)
	if d.err != nil {
		// The thought cannot be read, whichever stage reads it: one letter
		// for all of them (StageInput), written by the first to get there.
		p.settle(d, p.deadLetter(ctx, d, StageInput, d.err))
		return 0
	}
	r, _ := p.chain(ctx, d) // the error is in r.settle
	p.settle(d, r.settle)
	if r.settle.op != ack {
		return 0
	}
	return r.took
}

// produce is the innermost handler: the stage's work on the thought, with a
// fresh call budget and the thought's tenant, then, in this order, the
// publish of its transcript, if any, the review of a verdict that requires a
// person (reviews.go; such a verdict's transcript is stored after its review,
// see publishTranscript), and the publish of its output: the verdict that
// review holds, when an earlier delivery stored it. A deadline
// tells the pool's limit that the work behind it is pushing back.
func (p *Pool) produce(ctx context.Context, d *delivery) (result, error) {
	// The tenant even when FIFO: its agent's quotas hold whatever the order
	// (without it, NOESIS_FAIR_SHARE=false let every agent past its quota).
	hctx := pipeline.WithTenant(ctx, pipeline.Tenant{Agent: d.thought.AgentID, Priority: d.thought.Priority, FirstCome: p.cfg.FIFO})
	hctx, _ = pipeline.WithCallBudget(hctx, p.cfg.CallBudget)
	called := time.Now()
	out, err := p.stageWork(hctx, d.thought)
	r := result{out: out, took: time.Since(called)}
	if errors.Is(err, context.DeadlineExceeded) {
		p.limit.Drop()
	}
	if err == nil {
		err = p.publishTranscript(ctx, d, out)
	}
	var data []byte
	if err == nil {
		var buf *scratch
		data, buf, err = p.encode(out)
		if buf != nil {
			// Every use of data ends within produce: its publish (which
			// copies it), its review's (which stores it).
			defer buf.release()
		}
	}
	if err == nil { // the verdict to publish may be the one an earlier delivery's review holds
		r.out, data, err = p.queueReview(ctx, d, out, data)
	}
	if err == nil {
		r.dup, err = p.publish(ctx, d, data)
		r.took = time.Since(called)
	}
	return r, err
}

// settle acks, naks or terms the thought's message as s says.
//
// An ack is a plain ack, not a double ack that waits for the server's
// confirmation: an ack lost on the way is a redelivery after the ack wait,
// whose outputs the outputs stream drops as duplicates (their message ids are
// the same), so waiting bought nothing but a round trip per thought.
// Measured: cache hits 5,210 -> 5,937 thoughts/s (docs/performance.md).
func (p *Pool) settle(d *delivery, s settlement) {
	switch s.op {
	case ack:
		if err := d.msg.Ack(); err != nil {
			d.logger().Warn().Err(err).Msg("ack not sent; the thought will be redelivered and its outputs dropped as duplicates")
		}
	case nak:
		if err := d.msg.NakWithDelay(s.delay); err != nil {
			d.logger().Warn().Err(err).Msg("nak failed; the server will redeliver after ack wait")
		}
	case term:
		if err := d.msg.TermWithReason(s.reason); err != nil {
			d.logger().Warn().Err(err).Msg("term not sent; the server may redeliver, and the dead letter is deduplicated")
		}
	}
}
