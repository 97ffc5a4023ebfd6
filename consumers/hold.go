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
func (p *Pool) held(next handlerFunc) handlerFunc {
	return func(ctx context.Context, d *delivery) (result, error) {
		started := time.Now()
		for {
			r, err := next(ctx, d)
			if err == nil || !errors.Is(err, pipeline.ErrRateLimited) {
				return r, err
			}
			if !errors.Is(err, pipeline.ErrQuota) {
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
			d.log.Debug().Dur("retry_after", after).Msg("rate limited; holding the thought and trying again")
			timer := time.NewTimer(after)
			select {
			case <-ctx.Done():
				timer.Stop()
				return result{out: r.out}, err
			case <-timer.C:
			}
		}
	}
}
