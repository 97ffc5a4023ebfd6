package consumers

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers/shared"
)

// A stage's consumer is shared by every worker, and its MaxAckPending caps
// the thoughts out to all of them at once. A fixed setting cannot suit
// adaptive pools whose limits move and whose number changes, so for an
// adaptive pool with no MaxAckPending configured it follows the live
// workers' announced limits (the registry): room for each worker to double
// its limit (slow start triples it per round of answers while full) plus its pull buffer, each
// worker counted at most MaxConcurrency plus its buffer, and never below
// MaxConcurrency. Every worker computes the same figure from the registry,
// so whichever updates the consumer, it converges; it is raised at once and
// lowered only when it is more than twice what is wanted.

// followsAckPending reports whether the pool's consumer MaxAckPending
// follows the live limits.
func (p *Pool) followsAckPending() bool { return p.cfg.Concurrency == 0 && !p.ackPendingSet }

// wantAckPending returns the MaxAckPending the live workers' limits call for.
func (p *Pool) wantAckPending(workers []shared.WorkerInfo) int {
	want := 0
	for _, w := range workers {
		if l, ok := w.Limits[string(p.cfg.Stage)]; ok && l.Adaptive {
			want += min(2*l.Limit, p.cfg.MaxConcurrency) + p.pullBuffer()
		}
	}
	return max(want, p.cfg.MaxConcurrency)
}

// followAckPending sets the consumer's MaxAckPending to what the live limits
// call for, when it is below it or more than twice above it. It returns the
// consumer's MaxAckPending after.
func (p *Pool) followAckPending(ctx context.Context) (int, error) {
	workers, err := shared.ListWorkers(ctx, p.js)
	if err != nil {
		return 0, err
	}
	cons, err := p.js.Consumer(ctx, StreamThoughts, string(p.cfg.Stage))
	if err != nil {
		return 0, err
	}
	have := cons.CachedInfo().Config.MaxAckPending
	want := p.wantAckPending(workers)
	if have >= want && have <= 2*want {
		return have, nil
	}
	cfg := ConsumerConfig(p.cfg)
	cfg.MaxAckPending = want
	if _, err := p.js.CreateOrUpdateConsumer(ctx, StreamThoughts, cfg); err != nil {
		return have, err
	}
	p.log.Info().Int("from", have).Int("to", want).Int("workers", len(workers)).Msg("consumer's max ack pending follows the live limits")
	return want, nil
}

// consumerConfig is the pool's consumer config; a following MaxAckPending
// keeps the consumer's current value when that is higher, so a worker that
// starts does not undo what the live limits called for.
func (p *Pool) consumerConfig(ctx context.Context) jetstream.ConsumerConfig {
	cfg := ConsumerConfig(p.cfg)
	if p.followsAckPending() {
		if cons, err := p.js.Consumer(ctx, StreamThoughts, string(p.cfg.Stage)); err == nil {
			cfg.MaxAckPending = max(cfg.MaxAckPending, cons.CachedInfo().Config.MaxAckPending)
		}
	}
	return cfg
}
