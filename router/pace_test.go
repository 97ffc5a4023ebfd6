package router_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// Against a provider that takes 50 requests a second and refuses the rest
// with 429 and Retry-After, calls offered at three times that all get their
// answers, and after the first refusals teach the router the quota, calls
// wait for their turn instead of being sent to be refused.
func TestPacingLearnsTheProvidersQuota(t *testing.T) {
	s, url := simtest.Start(t, sim.Config{RequestsPerSecond: 50})
	c := newChain(t, url, "k", nil, 8)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var failed atomic.Int64
	const calls = 300
	offer := time.NewTicker(100 * time.Millisecond) // the offered load's pace, not a wait for a result
	defer offer.Stop()
	for i := range calls { // 150 a second for two seconds
		if i > 0 && i%15 == 0 {
			<-offer.C
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Complete(ctx, judgeRequest(pipeline.TierFast, fmt.Sprintf("paced call %d", i))); err != nil {
				failed.Add(1)
				t.Log(err)
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	refused := st.Faults["429"]
	t.Logf("%d calls, %d requests, %d answered 429; paced to %.1f/s", calls, st.Requests, refused, c.PacedRates()["fast"])
	if failed.Load() != 0 {
		t.Fatalf("%d calls failed", failed.Load())
	}
	// Unpaced, every Retry-After sends the held calls back at once and most
	// are refused again (over 300 refusals here); paced, the refusals are
	// those of the first second or so, before the quota is known.
	if refused > calls/2 {
		t.Errorf("%d of %d requests answered 429: the router did not learn the quota", refused, st.Requests)
	}
	// The learned pace is the quota, within the probing's reach (status and
	// the metrics show it).
	if r := c.PacedRates()["fast"]; r < 20 || r > 100 {
		t.Errorf("paced to %.1f calls/s, want about the quota of 50 (rates %v)", r, c.PacedRates())
	}
}
