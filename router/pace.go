package router

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/noesis-dev/noesis/pipeline"
)

// A pacer learns a target's quota from its 429s and sends no faster than
// that, so calls wait for their turn here instead of being sent to be
// refused (without it, at 1,000 thoughts/s against a 600 requests/s quota,
// more than half the calls were answered 429: docs/performance.md).
//
// While a provider refuses some calls, the calls it accepts per second are
// its quota; so the pacer measures, over one-second windows, the calls sent
// less the calls refused. The window of the first 429 (the target paused for
// its Retry-After) starts pacing at the rate accepted in it; each later
// window with a refusal sets the rate to what that window's provider
// accepted, a little under; each window in which calls waited on the pacer
// and none was refused raises the rate by a twentieth, probing for more
// (the provider's quota may have grown, or another worker gone). After
// paceQuietFor without a 429 it stops pacing. Per process: several workers
// each learn their share.
//
// Not every 429 is a quota: a provider may refuse particular requests, or
// everything for a while, whatever the rate. When a whole window at the
// pace still has most of its calls refused, pacing is not what helps; the
// pacer stops, and leaves the target to the Retry-After pauses for
// paceGiveUpFor.
type pacer struct {
	mu      sync.Mutex
	lim     *rate.Limiter // nil: not pacing
	window  time.Time     // start of the current one-second window
	sent    int           // calls sent in it
	refused int           // and answered 429
	waited  int           // calls that waited on the pacer in it
	last429 time.Time

	learning bool      // a 429 came in this window: pace at its end
	since    time.Time // when pacing began
	noPace   time.Time // no pacing before this: it did not help
}

const (
	paceQuietFor  = time.Minute
	paceGiveUpFor = 30 * time.Second
	// paceMinRate is the least accepted rate pacing starts from: below it a
	// window's few calls say too little, and the Retry-After pauses do.
	paceMinRate = 10.0
	paceUnder   = 0.97 // the share of the measured quota to send at
	paceProbe   = 1.05 // the raise after a window that waited and was not refused
)

// send counts a call on its way.
func (p *pacer) send(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.roll(now)
	p.sent++
}

// ok learns from an answered call: a long quiet ends the pacing.
func (p *pacer) ok(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lim != nil && now.Sub(p.last429) > paceQuietFor {
		p.lim = nil // the quota no longer binds
	}
}

// limited learns from a 429, and reports whether the target was paced
// already: then the 429 is a probe past the quota, and only that call waits
// its Retry-After; before, the whole target pauses for it (target.block).
func (p *pacer) limited(now time.Time) (paced bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.roll(now)
	p.refused++
	p.last429 = now
	if p.lim != nil {
		return true
	}
	p.learning = now.After(p.noPace) // pace from the end of this window
	return false
}

// roll closes the window when a second has passed, learning from it.
func (p *pacer) roll(now time.Time) {
	el := now.Sub(p.window)
	if el < time.Second {
		return
	}
	accepted := float64(p.sent-p.refused) / el.Seconds()
	switch {
	case el >= 2*time.Second: // an idle gap teaches nothing
	case p.lim == nil:
		if p.learning && accepted >= paceMinRate {
			p.lim, p.since = rate.NewLimiter(rate.Limit(accepted*paceUnder), burstFor(accepted)), now
		}
	case !p.window.Before(p.since) && p.waited > 0 && 2*p.refused > p.sent:
		p.lim, p.noPace = nil, now.Add(paceGiveUpFor) // refused at the pace too: not a quota
	case p.refused > 0 && accepted > 0:
		p.set(now, accepted*paceUnder)
	case p.refused == 0 && p.waited > 0:
		p.set(now, float64(p.lim.Limit())*paceProbe)
	}
	p.learning = false
	p.window, p.sent, p.refused, p.waited = now, 0, 0, 0
}

func (p *pacer) set(now time.Time, r float64) {
	p.lim.SetLimitAt(now, rate.Limit(r))
	p.lim.SetBurstAt(now, burstFor(r))
}

// burstFor lets a tenth of a second's calls go at once.
func burstFor(r float64) int { return max(1, int(r/10)) }

// Rate returns the paced rate in calls per second, or 0 when not pacing.
func (p *pacer) Rate() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lim == nil {
		return 0
	}
	return float64(p.lim.Limit())
}

// wait waits for the call's turn. When the turn comes after ctx's deadline
// it gives the turn back and fails at once with the wait as a Retry-After,
// so the pool holds the thought for it instead of spending a delivery.
func (p *pacer) wait(ctx context.Context, target string) error {
	p.mu.Lock()
	lim := p.lim
	if lim == nil {
		p.mu.Unlock()
		return nil
	}
	r := lim.Reserve()
	d := r.Delay()
	if d > 0 {
		p.waited++
	}
	p.mu.Unlock()
	if d == 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		r.Cancel()
		return &pipeline.RetryAfterError{After: d,
			Err: fmt.Errorf("%w: %w: %s is paced to its learned quota; the next turn is in %s", pipeline.ErrTransient, pipeline.ErrRateLimited, target, d.Round(time.Millisecond))}
	}
	if err := sleepCtx(ctx, d); err != nil {
		r.Cancel()
		return err
	}
	return nil
}
