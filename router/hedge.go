package router

import (
	"context"
	"errors"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
)

// hedge asks primary, and backup too once primary has taken longer than
// after (or failed); the first answer wins and the other call is cancelled.
func (c *Chain) hedge(ctx context.Context, req pipeline.Request, primary, backup *target, after time.Duration) (pipeline.Response, error) {
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
	go func() {
		r, err := c.viaCache(pctx, primary, req)
		results <- result{r, err, false}
	}()
	timer := time.NewTimer(after)
	defer timer.Stop()
	pending, hedged := 1, false
	startBackup := func() {
		if !hedged {
			hedged = true
			pending++
			go func() {
				r, err := c.viaCache(bctx, backup, req)
				results <- result{r, err, true}
			}()
		}
	}
	var errs []error
	for pending > 0 {
		select {
		case <-timer.C:
			startBackup()
		case r := <-results:
			pending--
			if r.err == nil {
				if r.backup {
					cancelPrimary()
					r.resp.Hedged = true
					c.log.Debug().Str("winner", backup.Name).Str("loser", primary.Name).Dur("after", after).Msg("hedge won")
				} else {
					cancelBackup()
				}
				return r.resp, nil
			}
			errs = append(errs, r.err)
			if !r.backup {
				// The primary failed: the backup is now a plain fallback, unless
				// the request was refused for what it holds (see Complete).
				if final(r.err) {
					return pipeline.Response{}, r.err
				}
				tooLong := map[modelAt]bool{}
				if c.noteTooLong(tooLong, r.err); !tooLong[backup.modelAt()] {
					startBackup()
				}
			}
		}
	}
	return pipeline.Response{}, errors.Join(errs...)
}
