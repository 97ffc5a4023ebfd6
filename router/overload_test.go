package router_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/breaker"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// overloadChain is a chain of one target on url whose breaker opens at the
// first failure counted against it.
func overloadChain(t *testing.T, log *breakerLog, url string) *router.Router {
	t.Helper()
	cfg := router.Config{Tiers: map[pipeline.Tier][]string{pipeline.TierFast: {"only"}}, Timeout: time.Second, Attempts: 3, Backoff: time.Millisecond,
		Breaker: breaker.Config{Failures: 1, Cooldown: time.Hour}, OnBreakerChange: log.record,
		Providers: []router.Provider{{Name: "p", Kind: router.KindOpenAI, BaseURL: url, APIKey: "k"}},
		Targets:   []router.Target{{Name: "only", Provider: "p", Model: "test/model"}}}
	return newRouter(t, cfg, nil)
}

// burst sends n distinct calls at once and returns their errors (nil: answered).
func burst(c *router.Router, n int) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = c.Complete(context.Background(), pipeline.Request{Tier: pipeline.TierFast, MaxTokens: 16,
				Messages: []pipeline.Message{{Role: pipeline.RoleUser, Content: fmt.Sprintf("call %d", i)}}})
		})
	}
	wg.Wait()
	return errs
}

// A provider that generates two answers at once and queues the rest, sent
// 40 calls at once: those that pass their timeout in its queue while it
// answers the others are our overload, not its failure. No breaker opens;
// each comes back as ErrOverloaded, a rate limit with a Retry-After, which
// the worker holds its thought for.
func TestOverloadIsNotTheTargetsFailure(t *testing.T) {
	profiles := map[string]sim.Profile{"test/model": {Latency: 100 * time.Millisecond, TokensPerSecond: 50}}
	_, url := simtest.Start(t, sim.Config{LatencyScale: 1, Lengths: sim.LengthsSeed, Profiles: profiles, Capacity: 2})
	var log breakerLog
	c := overloadChain(t, &log, url)
	answered, overloaded := 0, 0
	for _, err := range burst(c, 40) {
		switch {
		case err == nil:
			answered++
		case errors.Is(err, router.ErrOverloaded):
			overloaded++
			if _, ok := pipeline.RetryAfter(err); !ok || !errors.Is(err, pipeline.ErrRateLimited) || router.ErrorClass(err) != router.ClassOverloaded {
				t.Errorf("an overloaded call is not a rate limit with a Retry-After: %v", err)
			}
		default:
			t.Errorf("a call failed otherwise than overloaded: %v", err)
		}
	}
	if s := log.String(); s != "" {
		t.Fatalf("a breaker changed for our own overload:\n%s", s)
	}
	if answered == 0 || overloaded == 0 {
		t.Fatalf("%d answered, %d overloaded of 40 against two answers at once and a 1 s timeout; want some of each", answered, overloaded)
	}
	if got := c.BreakerStates()["only"]; got != string(breaker.Closed) {
		t.Fatalf("breaker %s", got)
	}
}

// A target that answers nothing while calls wait is failing, whatever the
// load: its timeouts count, and its breaker opens.
func TestAHungTargetStillOpensItsBreaker(t *testing.T) {
	_, url := simtest.Start(t, sim.Config{Faults: sim.Faults{HangRate: 1}})
	var log breakerLog
	c := overloadChain(t, &log, url)
	for _, err := range burst(c, 4) {
		if err == nil || errors.Is(err, router.ErrOverloaded) {
			t.Fatalf("a call to a hung target: %v, want a failure that is not overload", err)
		}
	}
	if got := c.BreakerStates()["only"]; got != string(breaker.Open) {
		t.Fatalf("breaker %s after timeouts with no answer, want open; changes:\n%s", got, log.String())
	}
}
