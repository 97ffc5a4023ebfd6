package router

import (
	"context"
	"errors"
	"fmt"
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
// refused for what it holds, which is one thought's, not the target's, and
// never a call that failed for the load we put on the target (overloaded):
// that one is not tried again here, and comes back as ErrOverloaded.
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
		agent, reserved, qerr := c.admit(ctx, t, req)
		if qerr != nil {
			return pipeline.Response{}, backoff.Permanent(andThen(last, qerr))
		}
		sent := time.Now()
		resp, err := c.call(ctx, t, req)
		if agent != "" {
			c.limiter.SettleAgent(ctx, agent, resp.Usage.TotalTokens, resp.CostUSD, reserved)
		}
		if err == nil {
			t.breaker.Record(nil)
			return resp, nil
		}
		if ctx.Err() == nil && t.overloaded(err, req, sent) {
			// Our load, not the target's fault: no breaker counts it, and
			// no second try adds to the queue; the worker holds the thought.
			c.log.Debug().Str("target", t.Name).Str("purpose", req.Purpose).Err(err).Msg("model call overloaded the target")
			return pipeline.Response{}, backoff.Permanent(andThen(last, c.overload(t, err)))
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

// admit asks the shared counters whether the agent whose thought ctx serves
// may make one more call to t under its quota, reserving the call's most
// expected cost; it returns the agent ("" when nothing was asked) and the
// reservation. Calls outside a thought, and every call when no agent has a
// quota, pass without asking.
func (c *Chain) admit(ctx context.Context, t *target, req pipeline.Request) (string, float64, error) {
	if c.limiter == nil || !c.cfg.quotas() {
		return "", 0, nil
	}
	agent := pipeline.TenantOf(ctx).Agent
	if agent == "" {
		return "", 0, nil
	}
	q := c.cfg.quotaFor(agent)
	if !q.Active() {
		return "", 0, nil
	}
	reserve := 0.0
	if q.USD > 0 {
		reserve = t.mostCost(req)
	}
	if err := c.limiter.Admit(ctx, agent, q.RPM, q.TPM, q.USD, reserve); err != nil {
		if !errors.Is(err, pipeline.ErrQuota) { // the counters: the agent's, not the target's
			err = fmt.Errorf("%w: %w: agent %s's quota could not be checked: %w", pipeline.ErrTransient, pipeline.ErrQuota, agent, err)
		}
		return "", 0, err
	}
	return agent, reserve, nil
}

// mostCost is the most a call of req to t is expected to cost: its prompt
// at about four characters a token, and every token of its max_tokens.
func (t *target) mostCost(req pipeline.Request) float64 {
	chars := 0
	for _, m := range req.Messages {
		chars += len(m.Content)
	}
	return (float64(chars/4)*t.PriceIn + float64(req.MaxTokens)*t.PriceOut) / 1e6
}
