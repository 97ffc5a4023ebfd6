package router

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
)

// hedge asks primary, and backup too once primary has taken longer than
// after (or failed); the first answer wins and the other call is cancelled
// (the router's calls group owns it until it has returned).
func (r *Router) hedge(ctx context.Context, req pipeline.Request, primary, backup *target, after time.Duration) (pipeline.Response, error) {
	type result struct {
		resp   pipeline.Response
		err    error
		backup bool
	}
	results := make(chan result, 2)
	pctx, cancelPrimary := context.WithCancel(ctx)
	defer cancelPrimary()
	bctx, cancelBackup := context.WithCancel(ctx)
	defer cancelBackup()
	r.calls.Go(func() {
		resp, err := r.viaCache(pctx, primary, &req)
		results <- result{resp, err, false}
	})
	timer := time.NewTimer(after)
	defer timer.Stop()
	pending, hedged := 1, false
	startBackup := func() {
		if !hedged {
			hedged = true
			pending++
			r.calls.Go(func() {
				resp, err := r.viaCache(bctx, backup, &req)
				results <- result{resp, err, true}
			})
		}
	}
	var errs []error
	for pending > 0 {
		select {
		case <-timer.C:
			startBackup()
		case res := <-results:
			pending--
			if res.err == nil {
				if res.backup {
					cancelPrimary()
					res.resp.Hedged = true
					r.log.Debug().Str("winner", backup.Name).Str("loser", primary.Name).Dur("after", after).Msg("hedge won")
				} else {
					cancelBackup()
				}
				return res.resp, nil
			}
			errs = append(errs, res.err)
			if !res.backup {
				// The primary failed: the backup is now a plain fallback, unless
				// the request was refused for what it holds (see Complete).
				if final(res.err) {
					return pipeline.Response{}, res.err
				}
				if !slices.Contains(r.noteTooLong(nil, res.err), backup.modelAt()) {
					startBackup()
				}
			}
		}
	}
	return pipeline.Response{}, errors.Join(errs...)
}
