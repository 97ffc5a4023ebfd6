package router

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
)

// course is one request's way through the router: its chain's targets in
// turn (Complete), or one target (viaCache), each asked through the cache
// and then tried. Its steps leave what the next one needs here rather than
// in their frames, so that drive makes the backend's call from its own
// frame with none of theirs under it: a goroutine that calls a model holds
// its stack for as long as the call is in flight, and the chain's, cache's,
// retry's, target's and call's frames around the call were 4 KB of a
// judge's (docs/performance.md).
type course struct {
	r     *Router
	ctx   context.Context
	req   pipeline.Request
	first *target   // the chain's first: an answer of another is a fallback
	open  []*target // the targets still to ask
	// single: the course of viaCache, whose one target's answer or error
	// is the course's as it is.
	single  bool
	errs    []error   // why each target asked so far did not answer
	tooLong []modelAt // the models that refused the request as past their context

	t       *target // the target being asked
	key     string  // its answer's cache key, when the tier is cached
	f       *flight // the flight it leads for key, until landed
	started time.Time
	a       attempt // its first try

	done bool
	resp pipeline.Response
	err  error
}

// drive takes c to its answer. Every backend call of a first try is made
// here; only the tries after a failed one (target.again) go deeper.
func (r *Router) drive(c *course) (pipeline.Response, error) {
	defer c.unwind()
	for c.next() {
		c.answered(chat(c.a.cctx, c.t.backend, &c.req))
	}
	return c.resp, c.err
}

// next takes c to its next backend call (true), or to its end (false).
func (c *course) next() bool {
	for !c.done {
		if len(c.open) == 0 {
			c.finish()
			return false
		}
		t := c.open[0]
		c.open = c.open[1:]
		if !c.single {
			if slices.Contains(c.tooLong, t.modelAt()) {
				continue // the same model at the same provider: the same context
			}
			if len(c.open) > 0 && t.rateLimited() {
				// Paused by a 429's Retry-After: the next target takes the traffic
				// meanwhile, and this one has it back once the pause is over.
				c.errs = append(c.errs, t.pausedErr())
				continue
			}
		}
		c.t = t
		if c.begin() {
			return true
		}
	}
	return false
}

// begin asks c's target through the cache (Cache.Do's join and ask) and
// makes its first try's steps up to the backend's call; it reports whether
// that call is to be made, else c has the target's outcome.
func (c *course) begin() bool {
	t, tier := c.t, c.req.Tier
	if cache := c.r.cache; cache.On(tier) {
		c.key = cacheKey(t.provider.Name, t.Model, &c.req)
		resp, f, err := cache.join(c.ctx, tier, c.key)
		if f == nil {
			c.outcome(resp, err)
			return false
		}
		c.f = f
		if resp, found := cache.ask(c.ctx, tier, c.key, f); found {
			c.landed(resp, nil)
			return false
		}
	}
	c.started = time.Now()
	c.a = attempt{}
	if err := c.a.open(c.ctx, t, &c.req); err != nil {
		c.tried(pipeline.Response{}, err)
		return false
	}
	return true
}

// answered makes the first try's steps after the backend's call, which
// gave reply or err.
func (c *course) answered(reply Reply, err error) {
	c.tried(c.a.close(&reply, err))
}

// tried takes the first try's answer or error: a success closes the
// target's breaker's count, a failure goes on to the tries after it.
func (c *course) tried(resp pipeline.Response, err error) {
	if err == nil {
		c.t.breaker.Record(nil)
	} else {
		resp, err = c.t.again(c.ctx, &c.req, c.started, err)
	}
	c.landed(resp, err)
}

// landed ends the target's flight with its answer or error (Cache.land).
func (c *course) landed(resp pipeline.Response, err error) {
	if c.f != nil {
		resp, err = c.r.cache.land(c.ctx, c.req.Tier, c.key, c.f, resp, err)
		c.f = nil
	}
	c.outcome(resp, err)
}

// outcome takes the target's answer or error: an answer ends the course;
// so does a refusal of the request no other target would take (final);
// another error is kept, and the chain goes on while ctx lasts.
func (c *course) outcome(resp pipeline.Response, err error) {
	if err == nil {
		resp.Target = c.t.Name
	}
	switch {
	case c.single:
		c.resp, c.err, c.done = resp, err, true
	case err == nil:
		resp.Fallback = c.t != c.first
		c.resp, c.done = resp, true
	case final(err):
		c.err, c.done = err, true // the request's fault: no other target would take it
	default:
		c.tooLong = c.r.noteTooLong(c.tooLong, err)
		c.errs = append(c.errs, err)
		if c.ctx.Err() != nil {
			c.open = nil
		}
	}
}

// finish ends a course whose targets are all asked: with the one error, or
// all of them.
func (c *course) finish() {
	c.done = true
	if len(c.errs) == 1 {
		c.err = c.errs[0]
		return
	}
	c.err = errors.Join(c.errs...)
}

// unwind, deferred by drive, ends what a panic cut short: the first try's
// span, timeout and slot, and the target's flight (Cache.unwind), so that
// the callers waiting on it hear of it. After a course's end it does nothing.
func (c *course) unwind() {
	c.a.end()
	if c.f != nil {
		c.r.cache.unwind(c.ctx, c.req.Tier, c.key, c.f)
	}
}
