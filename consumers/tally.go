package consumers

import (
	"context"
	"sync/atomic"

	"github.com/noesis-dev/noesis/pipeline"
)

// PoolStats counts what a pool did. FullWaits counts the waits of thoughts
// held because their output was refused for want of room.
type PoolStats struct {
	Processed, Skipped, Published, Duplicates, Retried, DeadLettered, RateLimitWaits, FullWaits uint64
}

// DeliveryObserver is told how each delivery of a thought ended, for
// metrics. Outcomes: published, duplicate, skipped, retried, dead_lettered,
// rate_limit_wait, stream_full_wait. out is the stage's output when there is
// one. Implementations must be safe for concurrent use and must not block.
type DeliveryObserver interface {
	Handled(stage pipeline.Stage, outcome string, delivery uint64, out pipeline.Output)
}

// The outcomes a DeliveryObserver is told.
const (
	outcomePublished      = "published"
	outcomeDuplicate      = "duplicate"
	outcomeSkipped        = "skipped"
	outcomeRetried        = "retried"
	outcomeDeadLettered   = "dead_lettered"
	outcomeRateLimitWait  = "rate_limit_wait"
	outcomeStreamFullWait = "stream_full_wait"
)

// tally counts what a pool did and tells its observer, if any. It is safe
// for concurrent use.
type tally struct {
	stage     pipeline.Stage
	obs       DeliveryObserver // nil: none
	processed atomic.Uint64
	outcomes  map[string]*atomic.Uint64 // a counter per outcome; read only after newTally
}

// newTally returns a tally for stage's pool, its counters at zero.
func newTally(stage pipeline.Stage) *tally {
	t := &tally{stage: stage, outcomes: map[string]*atomic.Uint64{}}
	for _, o := range []string{outcomePublished, outcomeDuplicate, outcomeSkipped, outcomeRetried, outcomeDeadLettered, outcomeRateLimitWait, outcomeStreamFullWait} {
		t.outcomes[o] = new(atomic.Uint64)
	}
	return t
}

// add counts one outcome and tells the observer.
func (t *tally) add(outcome string, delivery uint64, out pipeline.Output) {
	t.outcomes[outcome].Add(1)
	if t.obs != nil {
		t.obs.Handled(t.stage, outcome, delivery, out)
	}
}

// counted is the middleware that counts each delivery the stage worked on,
// and each that it published (or found already published). Retries and dead
// letters are counted where they are decided (decided), waits where they
// wait (held, publish).
func (t *tally) counted(next handlerFunc) handlerFunc {
	return func(ctx context.Context, d *delivery) (result, error) {
		r, err := next(ctx, d)
		t.processed.Add(1)
		switch {
		case err != nil:
		case r.dup:
			t.add(outcomeDuplicate, d.delivered, r.out)
		default:
			t.add(outcomePublished, d.delivered, r.out)
		}
		return r, err
	}
}

// stats reads the counters.
func (t *tally) stats() PoolStats {
	n := func(outcome string) uint64 { return t.outcomes[outcome].Load() }
	return PoolStats{Processed: t.processed.Load(), Skipped: n(outcomeSkipped), Published: n(outcomePublished), Duplicates: n(outcomeDuplicate),
		Retried: n(outcomeRetried), DeadLettered: n(outcomeDeadLettered), RateLimitWaits: n(outcomeRateLimitWait), FullWaits: n(outcomeStreamFullWait)}
}
