package router

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
)

// tryTarget calls one target up to Attempts times, backing off between tries
// with jitter, and waiting at least what a Retry-After asked for. It gives
// up early when the wait would outlast ctx.
func (c *Chain) tryTarget(ctx context.Context, t *target, req pipeline.Request) (pipeline.Response, error) {
	var err error
	for attempt := 1; attempt <= c.cfg.Attempts; attempt++ {
		if attempt > 1 {
			wait := c.cfg.Backoff << (attempt - 2)
			wait += time.Duration((rand.Float64()*0.4 - 0.2) * float64(wait))
			if ra, ok := pipeline.RetryAfter(err); ok && ra > wait {
				wait = ra
			}
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
				break
			}
			if serr := sleepCtx(ctx, wait); serr != nil {
				return pipeline.Response{}, fmt.Errorf("%w (after %d tries: %w)", serr, attempt-1, err)
			}
		}
		if werr := t.waitUnblocked(ctx); werr != nil {
			err = andThen(err, werr)
			break
		}
		if berr := pipeline.SpendCall(ctx); berr != nil {
			err = andThen(err, berr)
			break
		}
		var resp pipeline.Response
		resp, err = c.call(ctx, t, req)
		if err == nil {
			t.breaker.Record(true)
			return resp, nil
		}
		if breaks(err) && ctx.Err() == nil {
			t.breaker.Record(false)
		}
		c.log.Debug().Str("target", t.Name).Str("model", t.Model).Str("purpose", req.Purpose).Int("attempt", attempt).Err(err).Msg("model call failed")
		if errors.Is(err, pipeline.ErrPermanent) || ctx.Err() != nil {
			break
		}
	}
	return pipeline.Response{}, err
}
