package router

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/noesis-dev/noesis/pipeline"
)

// tryTarget calls one target up to Attempts times, backing off between tries
// (cenkalti/backoff: exponential from Backoff, doubling, ±20 % jitter), and
// waiting at least what a Retry-After asked for. It gives up with the last
// error when the next wait would outlast ctx, and at once on a permanent one
// (a 4xx other than 408 and 429). Only failures that say the target is broken
// count toward its breaker (see breaks): never a request the provider
// refused for what it holds, which is one thought's, not the target's.
func (c *Chain) tryTarget(ctx context.Context, t *target, req pipeline.Request) (pipeline.Response, error) {
	var last error
	tries := 0
	wait := &retryWait{ctx: ctx, last: &last, exp: &backoff.ExponentialBackOff{
		InitialInterval: c.cfg.Backoff, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: time.Hour}}
	return backoff.Retry(ctx, func() (pipeline.Response, error) {
		tries++
		if werr := t.waitUnblocked(ctx); werr != nil {
			return pipeline.Response{}, backoff.Permanent(andThen(last, werr))
		}
		if werr := t.pace.wait(ctx, t.Name); werr != nil {
			return pipeline.Response{}, backoff.Permanent(andThen(last, werr))
		}
		if berr := pipeline.SpendCall(ctx); berr != nil {
			return pipeline.Response{}, backoff.Permanent(andThen(last, berr))
		}
		resp, err := c.call(ctx, t, req)
		if err == nil {
			t.breaker.Record(nil)
			return resp, nil
		}
		if breaks(err) && ctx.Err() == nil {
			t.breaker.Record(err)
		}
		c.log.Debug().Str("target", t.Name).Str("model", t.Model).Str("purpose", req.Purpose).Int("attempt", tries).Err(err).Msg("model call failed")
		last = err
		if errors.Is(err, pipeline.ErrPermanent) || ctx.Err() != nil {
			return pipeline.Response{}, backoff.Permanent(err)
		}
		return pipeline.Response{}, err
	}, backoff.WithBackOff(wait), backoff.WithMaxTries(uint(c.cfg.Attempts)), backoff.WithMaxElapsedTime(0))
}

// retryWait is the wait before a target's next try: the exponential
// backoff's, or the last error's Retry-After when that is longer; Stop when
// the wait would outlast ctx, so the caller gets the last error, not ctx's.
type retryWait struct {
	ctx  context.Context
	last *error
	exp  *backoff.ExponentialBackOff
}

func (w *retryWait) Reset() { w.exp.Reset() }

func (w *retryWait) NextBackOff() time.Duration {
	d := w.exp.NextBackOff()
	if ra, ok := pipeline.RetryAfter(*w.last); ok && ra > d {
		d = ra
	}
	if dl, ok := w.ctx.Deadline(); ok && time.Until(dl) < d {
		return backoff.Stop
	}
	return d
}
