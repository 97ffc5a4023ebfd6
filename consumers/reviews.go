package consumers

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/pipeline"
)

// ReviewQueue queues a person's review of a verdict that requires one
// (consumers/review's Clerk is the one noesis runs). A pool given one
// (WithReviews) calls Queue with the thought's message as delivered and the
// verdict's bytes exactly as it is about to publish them, after the
// verdict's transcript is stored and before the verdict is published:
// whoever reads a verdict that requires review finds its review queued.
//
// Queue must treat a review already queued (the thought redelivered) as
// success. An error that wraps ErrStreamFull holds the thought while the
// pool's patience lasts; any other is a transient failure of the thought,
// tried again, its outputs deduplicated. Queue is called concurrently.
type ReviewQueue interface {
	Queue(ctx context.Context, thought jetstream.Msg, verdict []byte) error
}

// WithReviews makes the pool queue in q the review of every verdict it
// publishes that requires human review, before it publishes the verdict.
// Without it no review is queued.
func WithReviews(q ReviewQueue) PoolOption {
	return func(p *Pool) { p.reviews = q }
}

// queueReview queues the review of out, encoded in data, when out is a
// verdict that requires human review and the pool has a queue.
func (p *Pool) queueReview(ctx context.Context, d *delivery, out pipeline.Output, data []byte) error {
	v, ok := out.(*pipeline.Verdict)
	if p.reviews == nil || !ok || !v.RequiresHumanReview {
		return nil
	}
	err := p.holdWhileFull(ctx, d.log, "review", func() error { return p.reviews.Queue(ctx, d.msg, data) })
	if err != nil {
		return fmt.Errorf("%w: queue review: %w", pipeline.ErrTransient, err)
	}
	return nil
}
