package consumers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/noesis-dev/noesis/pipeline"
)

// outcomes is a DeliveryObserver that keeps what it is told.
type outcomes struct {
	mu   sync.Mutex
	seen []string
}

func (o *outcomes) Handled(stage pipeline.Stage, outcome string, delivery uint64, _ pipeline.Output) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, fmt.Sprintf("%s %s %d", stage, outcome, delivery))
}

// Every delivery the stage worked on is counted, and one that published or
// found its output already published is told to the observer as such; a
// failure is counted where it is decided.
func TestCountedCountsEachDeliveryAndTellsTheObserver(t *testing.T) {
	obs := &outcomes{}
	tl := newTally(pipeline.StageTribunal)
	tl.obs = obs
	for _, r := range []struct {
		dup bool
		err error
	}{{false, nil}, {true, nil}, {false, pipeline.ErrTransient}} {
		h := tl.counted(func(context.Context, *delivery) (result, error) { return result{dup: r.dup}, r.err })
		_, _ = h(context.Background(), &delivery{delivered: 2})
	}
	tl.add(outcomeRateLimitWait, 0, nil)
	want := []string{"tribunal published 2", "tribunal duplicate 2", "tribunal rate_limit_wait 0"}
	if st := tl.stats(); st != (PoolStats{Processed: 3, Published: 1, Duplicates: 1, RateLimitWaits: 1}) || !slices.Equal(obs.seen, want) {
		t.Errorf("stats %+v, observed %q, want %q", st, obs.seen, want)
	}
}
