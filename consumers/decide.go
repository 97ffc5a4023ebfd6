package consumers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
)

// decided is the middleware that decides, from the error of a delivery, what
// becomes of its thought (result.settle), the one place the delivery
// semantics are mapped:
//
//   - none: ack (the outputs are stored);
//   - bad input, or a permanent failure that is not also transient: dead letter;
//   - any other failure on the last allowed delivery (MaxDeliver): dead letter;
//   - any other: nak, tried again after NakDelay, or after the failure's
//     Retry-After (a provider's, or an open breaker's cool-down) when that
//     is longer, up to 5 min.
//
// A rate limit or a full output stream does not reach it while the pool's
// patience lasts: held and publish hold the thought instead.
func (p *Pool) decided(next handlerFunc) handlerFunc {
	return func(ctx context.Context, d *delivery) (result, error) {
		r, err := next(ctx, d)
		switch {
		case err == nil:
			r.settle = settlement{op: ack}
		case errors.Is(err, pipeline.ErrBadInput) || (errors.Is(err, pipeline.ErrPermanent) && !errors.Is(err, pipeline.ErrTransient)):
			r.settle = p.deadLetter(ctx, d, p.cfg.Stage, err)
		case d.delivered >= uint64(p.cfg.MaxDeliver):
			r.settle = p.deadLetter(ctx, d, p.cfg.Stage, fmt.Errorf("gave up after %d deliveries: %w", d.delivered, err))
		default:
			r.settle = p.retry(d, err)
		}
		return r, err
	}
}

// retry is the settlement of a thought to be tried again after err.
func (p *Pool) retry(d *delivery, err error) settlement {
	delay := NakDelay(p.cfg.RetryDelay, d.delivered)
	if after, ok := pipeline.RetryAfter(err); ok && after > delay {
		delay = min(after, 5*time.Minute)
	}
	p.tally.add(outcomeRetried, d.delivered, nil)
	d.logger().Warn().Err(err).Dur("retry_in", delay).Msg("stage failed; will retry")
	return settlement{op: nak, delay: delay}
}

// deadLetter stores the thought as stage's dead letter and returns the
// settlement that terminates its message. If the letter cannot be stored
// (the DLQ is full, NATS is away), the message is nak'd instead, so it is
// never lost; on its last delivery the reaper stores its letter once there
// is room.
func (p *Pool) deadLetter(ctx context.Context, d *delivery, stage pipeline.Stage, cause error) settlement {
	msg := d.msg
	l := Letter{Stage: stage, Subject: msg.Subject(), Seq: d.seq, Attempts: d.delivered, Reason: cause.Error(), Data: msg.Data(), Header: msg.Headers()}
	var partial *pipeline.PartialError
	if errors.As(cause, &partial) {
		l.Transcript = partial.Transcript
	}
	if err := StoreLetter(ctx, p.js, l); err != nil {
		d.logger().Error().Err(err).Str("reason", l.Reason).Msg("dead letter not stored; the thought will be redelivered")
		return settlement{op: nak, delay: NakDelay(p.cfg.RetryDelay, d.delivered)}
	}
	p.tally.add(outcomeDeadLettered, d.delivered, nil)
	d.logger().Warn().Str("reason", l.Reason).Msg("thought dead-lettered")
	return settlement{op: term, reason: clipBytes(l.Reason, 256)}
}
