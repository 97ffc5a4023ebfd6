package consumers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
)

// held is the middleware that holds a rate-limited thought: it waits out
// the limit's Retry-After (RetryDelay without one), spread by up to half
// again so held thoughts do not all come back in the same instant, and
// tries again, while the pool's patience (RateLimitPatience) lasts. Rate
// limits thus slow the pool down instead of spending the thought's
// deliveries. A rate limit from the provider, not an agent's own quota,
// tells the pool's limit that the work behind it is pushing back.
//
// A thought held for its agent's own quota (pipeline.ErrQuota: its requests
// or tokens per window, its budget's calls in flight) gives its slot of the
// pool's limit back while it waits and takes one again before it tries
// again: the slots are every agent's, and an agent past its quota would
// otherwise hold them all until its window ended, every other agent's
// thoughts waiting behind (TestAgentPastItsQuotaDoesNotHoldTheSlots,
// cmd/noesis). A provider's rate limit keeps the slot: it is the pool's own
// pushback, which every thought waits for alike.
func (p *Pool) held(next handlerFunc) handlerFunc {
	return func(ctx context.Context, d *delivery) (result, error) {
		started := time.Now()
		for {
			r, err := next(ctx, d)
			if err == nil || !errors.Is(err, pipeline.ErrRateLimited) {
				return r, err
			}
			quota := errors.Is(err, pipeline.ErrQuota)
			if !quota {
				p.limit.Drop()
			}
			after, ok := pipeline.RetryAfter(err)
			if !ok {
				after = p.cfg.RetryDelay
			}
			after += rand.N(after/2 + 1)
			if time.Since(started)+after > p.cfg.RateLimitPatience {
				return result{out: r.out}, fmt.Errorf("rate limited for longer than %s: %w", p.cfg.RateLimitPatience, err)
			}
			p.tally.add(outcomeRateLimitWait, 0, nil)
			d.debug().Dur("retry_after", after).Msg("rate limited; holding the thought and trying again")
			if quota {
				p.limit.Release(0) // the agent's own wait: the others may have the slot meanwhile
			}
			timer := time.NewTimer(after)
			select {
			case <-ctx.Done():
				timer.Stop()
			case <-timer.C:
			}
			if quota && (ctx.Err() != nil || p.limit.Acquire(ctx) != nil) {
				p.limit.Reclaim() // the pool releases the thought's slot once it is settled
			}
			if ctx.Err() != nil {
				return result{out: r.out}, err
			}
		}
	}
}
