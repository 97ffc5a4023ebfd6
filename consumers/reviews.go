package consumers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/pipeline"
)

// ReviewQueue queues a person's review of a verdict that requires one
// (consumers/review's Clerk is the one noesis runs). A pool given one
// (WithReviews) calls Queue with the thought's message as delivered and the
// verdict's bytes exactly as it is about to publish them, before the
// verdict's transcript is stored and the verdict published: whoever reads a
// verdict that requires review finds its review queued and its transcript,
// and a verdict the queue refuses has neither published.
//
// A thought's verdict is the one its review holds. A thought delivered
// again after its review was stored (its worker died before publishing the
// verdict) is judged again, and the new verdict may differ in its bytes
// (latency, cache, time) or even its decision; the pool publishes the
// verdict the stored review holds instead, which Queue returns (and Held,
// when the new verdict requires no review).
//
// Queue must treat a review already queued (the thought redelivered) as
// success. An error that wraps ErrStreamFull holds the thought while the
// pool's patience lasts; any other, of either method, is a transient
// failure of the thought, tried again, its outputs deduplicated, except an
// error that wraps pipeline.ErrPermanent: the thought is dead-lettered at
// once with it as the reason, which is how a queue that bounds each agent's
// reviews refuses the thoughts of an agent past its bound (put back to
// wait, they would hold the stage consumer's MaxAckPending, which every
// agent shares). The methods are called concurrently.
type ReviewQueue interface {
	// Queue stores the review of verdict, judged on thought, unless one is
	// stored already, and returns the verdict the stored review holds:
	// verdict itself when this call stored it, else the earlier one's.
	Queue(ctx context.Context, thought jetstream.Msg, verdict []byte) (held []byte, err error)
	// Held returns the verdict the review stored for thought holds; nil
	// when none is stored. The pool asks it on a delivery after the first
	// whose verdict requires no review.
	Held(ctx context.Context, thought jetstream.Msg) (held []byte, err error)
}

// WithReviews makes the pool queue in q the review of every verdict it
// publishes that requires human review, before it publishes the verdict.
// Without it no review is queued.
func WithReviews(q ReviewQueue) PoolOption {
	return func(p *Pool) { p.reviews = q }
}

// queueReview queues the review of out, encoded in data, when out is a
// verdict that requires human review and the pool has a queue, and then
// stores the verdict's transcript (publishTranscript says why here). It
// returns the output to publish and its bytes: out and data, or, when an
// earlier delivery of the thought stored a review holding another verdict,
// that verdict, so that the agent and the reviewer see the same one; its
// transcript is the one that delivery stored (none when it stopped between
// the review and the transcript: a transcript of the verdict judged again
// would describe another verdict than the one published). A verdict the
// queue refuses for good comes back as an error wrapping
// pipeline.ErrPermanent in a *pipeline.PartialError carrying its
// transcript, for the dead letter. A verdict that requires no review is
// checked against a stored review only on a delivery after the first: only
// an earlier one can have stored it.
func (p *Pool) queueReview(ctx context.Context, d *delivery, out pipeline.Output, data []byte) (pipeline.Output, []byte, error) {
	v, ok := out.(*pipeline.Verdict)
	if p.reviews == nil || !ok || (!v.RequiresHumanReview && d.delivered <= 1) {
		return out, data, nil
	}
	var held []byte
	var err error
	if v.RequiresHumanReview {
		err = p.holdWhileFull(ctx, d, "review", func() (err error) { held, err = p.reviews.Queue(ctx, d.msg, data); return err })
	} else {
		held, err = p.reviews.Held(ctx, d.msg)
	}
	if errors.Is(err, pipeline.ErrPermanent) { // refused for good (an agent past its bound): dead-lettered
		err = fmt.Errorf("queue review: %w", err)
		if tr := v.Transcript(); tr != nil { // the letter keeps it; the agent never gets it
			err = &pipeline.PartialError{Err: err, Transcript: tr}
		}
		return out, data, err
	}
	if err != nil {
		return out, data, fmt.Errorf("%w: queue review: %w", pipeline.ErrTransient, err)
	}
	if held == nil || bytes.Equal(held, data) {
		if v.RequiresHumanReview { // queued: now its transcript (publishTranscript left it)
			if err := p.storeTranscript(ctx, d, out); err != nil {
				return out, data, err
			}
		}
		return out, data, nil
	}
	stored := new(pipeline.Verdict)
	if err := json.Unmarshal(held, stored); err != nil {
		d.logger().Error().Err(err).Msg("the verdict the thought's review holds does not decode; publishing the verdict judged again")
		return out, data, nil
	}
	d.logger().Info().Str("decision", string(stored.Decision)).Str("judged_again", string(v.Decision)).
		Msg("the thought's review was stored before, holding another verdict: publishing that one")
	return stored, held, nil
}
