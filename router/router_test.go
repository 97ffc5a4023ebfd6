package router_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/answer"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

func newChain(t *testing.T, url, key string, cache *router.Cache, attempts int) *router.Router {
	t.Helper()
	return newChainOfKind(t, router.KindSim, url, key, cache, attempts)
}

func newChainOfKind(t *testing.T, kind, url, key string, cache *router.Cache, attempts int) *router.Router {
	t.Helper()
	cfg := router.Config{
		Providers: []router.Provider{{Name: "sim", Kind: kind, BaseURL: url, APIKey: key}},
		Targets: []router.Target{
			{Name: "fast", Provider: "sim", Model: router.DefaultFastModel},
			{Name: "reasoning", Provider: "sim", Model: router.DefaultReasoningModel},
			{Name: "deep", Provider: "sim", Model: router.DefaultDeepModel},
		},
		Tiers:    map[pipeline.Tier][]string{pipeline.TierFast: {"fast"}, pipeline.TierReasoning: {"reasoning"}, pipeline.TierDeep: {"deep"}},
		Timeout:  500 * time.Millisecond,
		Attempts: attempts,
		Backoff:  10 * time.Millisecond,
	}
	return newRouter(t, cfg, cache)
}

// newRouter is router.New's chain for cfg and cache, closed when the test ends.
func newRouter(t *testing.T, cfg router.Config, cache *router.Cache) *router.Router {
	t.Helper()
	c, err := router.New(cfg, cache, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func judgeRequest(tier pipeline.Tier, user string) pipeline.Request {
	return pipeline.Request{Tier: tier, Temperature: 0.7, MaxTokens: 64, Messages: []pipeline.Message{
		{Role: pipeline.RoleSystem, Content: "You are VERITAS, the judge of truth"}, {Role: pipeline.RoleUser, Content: user}}}
}

func TestEachTierUsesItsOwnModel(t *testing.T) {
	s, url := simtest.Start(t, sim.Config{})
	c := newChain(t, url, "k", nil, 1)
	want := map[pipeline.Tier]string{pipeline.TierFast: router.DefaultFastModel, pipeline.TierReasoning: router.DefaultReasoningModel, pipeline.TierDeep: router.DefaultDeepModel}
	for tier, model := range want {
		r, err := c.Complete(context.Background(), judgeRequest(tier, "x"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Model != model {
			t.Errorf("tier %s answered by %s, want %s", tier, r.Model, model)
		}
	}
	st := s.Stats()
	for _, model := range want {
		if st.PerModel[model] != 1 {
			t.Errorf("simulator saw %d calls for %s, want 1", st.PerModel[model], model)
		}
	}
}

func TestReasoningIsSeparated(t *testing.T) {
	_, url := simtest.Start(t, sim.Config{Shape: "plain-lines"})
	c := newChain(t, url, "k", nil, 1)
	// R1-0528 closes a <think> its template opened; the Thinking model uses reasoning_content.
	for _, tier := range []pipeline.Tier{pipeline.TierReasoning, pipeline.TierDeep} {
		req := judgeRequest(tier, "x")
		req.MaxTokens = 8192
		r, err := c.Complete(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(r.Content, "think>") || strings.Contains(r.Content, "Okay, let me") || r.Truncated {
			t.Errorf("%s: reasoning leaked into the content (truncated %v): %q", tier, r.Truncated, r.Content)
		}
		if len(r.Reasoning) < 100 {
			t.Errorf("%s: reasoning lost: %q", tier, r.Reasoning)
		}
		if _, err := answer.Read(r.Content, "", "", ""); err != nil {
			t.Errorf("%s: judge answer unreadable: %v", tier, err)
		}
	}
}

// A thinking longer than max_tokens: finish_reason "length", no answer.
func TestThinkingCutAtMaxTokens(t *testing.T) {
	_, url := simtest.Start(t, sim.Config{})
	c := newChain(t, url, "k", nil, 1)
	for _, tier := range []pipeline.Tier{pipeline.TierReasoning, pipeline.TierDeep} {
		r, err := c.Complete(context.Background(), judgeRequest(tier, "x")) // 64 tokens
		if err != nil {
			t.Fatal(err)
		}
		if !r.Truncated || r.Usage.CompletionTokens != 64 {
			t.Errorf("%s: truncated %v after %d tokens, want true after 64", tier, r.Truncated, r.Usage.CompletionTokens)
		}
		if _, err := answer.ReadTagged(r.Content, "NZ0123456789abcdef"); err == nil {
			t.Errorf("%s: a verdict read from a cut-off thinking: %q", tier, r.Content)
		}
	}
}

func TestErrorsAreClassifiedAndRetried(t *testing.T) {
	cases := []struct {
		marker   string
		want     error
		class    string
		status   int
		attempts int64
	}{
		{"sim:http=503", pipeline.ErrTransient, router.ClassServer, 503, 3},
		{"sim:http=429", pipeline.ErrRateLimited, router.ClassRateLimited, 429, 3},
		{"sim:hang", pipeline.ErrTransient, router.ClassTimeout, 0, 3},
		{"sim:http=400", pipeline.ErrRequestRefused, router.ClassRequest, 400, 1},
		{"sim:http=422", pipeline.ErrRequestRefused, router.ClassRequest, 422, 1},
		{"sim:http=404", pipeline.ErrPermanent, router.ClassClient, 404, 1},
	}
	for _, tc := range cases {
		t.Run(tc.marker, func(t *testing.T) {
			s, url := simtest.Start(t, sim.Config{})
			c := newChain(t, url, "k", nil, 3)
			_, err := c.Complete(context.Background(), judgeRequest(pipeline.TierReasoning, tc.marker))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var ce *router.CallError
			if !errors.As(err, &ce) || ce.Class != tc.class || ce.Status != tc.status || ce.Target != "reasoning" || router.ErrorClass(err) != tc.class {
				t.Fatalf("call error %+v (class %s), want class %s, status %d", ce, router.ErrorClass(err), tc.class, tc.status)
			}
			if got := s.Stats().Requests; got != tc.attempts {
				t.Fatalf("%d requests, want %d", got, tc.attempts)
			}
		})
	}
}

func TestAPIKeyNeverInErrors(t *testing.T) {
	const secret = "nb-super-secret-key-0123456789"
	_, url := simtest.Start(t, sim.Config{APIKey: "the-right-key"})
	c := newChain(t, url, secret, nil, 3)
	_, err := c.Complete(context.Background(), judgeRequest(pipeline.TierFast, "x"))
	if !errors.Is(err, pipeline.ErrPermanent) {
		t.Fatalf("a 401 must be permanent, got %v", err)
	}
	if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Fatalf("error does not redact the key: %v", err)
	}
}

// cachedChain is a chain with the default cache, to a simulator of its own.
func cachedChain(t *testing.T) (*sim.Server, *router.Router) {
	t.Helper()
	s, url := simtest.Start(t, sim.Config{})
	cache, err := router.NewCache(router.CacheConfig{TTL: router.DefaultCacheTTL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	return s, newChain(t, url, "k", cache, 1)
}

func TestCacheServesRepeatsAndSaysSo(t *testing.T) {
	s, c := cachedChain(t)
	first, err := c.Complete(context.Background(), judgeRequest(pipeline.TierReasoning, "same thought"))
	if err != nil || first.Cached {
		t.Fatalf("first: %+v %v", first, err)
	}
	second, err := c.Complete(context.Background(), judgeRequest(pipeline.TierReasoning, "same thought"))
	if err != nil || !second.Cached || second.Content != first.Content {
		t.Fatalf("second: %+v %v", second, err)
	}
	if s.Stats().Requests != 1 {
		t.Fatalf("%d upstream requests, want 1", s.Stats().Requests)
	}
}

// Peek gives what Complete gives from the cache, and nothing it would have
// to ask for: not before the answer is cached, not for another request.
func TestPeekGivesOnlyWhatTheCacheHolds(t *testing.T) {
	s, c := cachedChain(t)
	req := judgeRequest(pipeline.TierReasoning, "same thought")
	if r, ok := c.Peek(context.Background(), req); ok {
		t.Fatalf("held before it was asked: %+v", r)
	}
	first, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	held, ok := c.Peek(context.Background(), req)
	again, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !ok || held.Content != first.Content || held != again {
		t.Errorf("held %v %+v, Complete gave %+v", ok, held, again)
	}
	if r, ok := c.Peek(context.Background(), judgeRequest(pipeline.TierReasoning, "another thought")); ok {
		t.Errorf("held an answer to a request never asked: %+v", r)
	}
	if n := s.Stats().Requests; n != 1 {
		t.Errorf("%d upstream requests, want 1", n)
	}
}

func TestTemperatureZeroIsSent(t *testing.T) {
	// go-openai drops a zero temperature (omitempty); the origin turned 0 into
	// 0.7. The router must send something the provider reads as greedy.
	s, url := simtest.Start(t, sim.Config{})
	c := newChain(t, url, "k", nil, 1)
	req := judgeRequest(pipeline.TierFast, "x")
	req.Temperature = 0
	if _, err := c.Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if n := s.Stats().NoTemperature; n != 0 {
		t.Fatalf("%d requests went out without a temperature", n)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  router.Config
		want string
	}{
		{"unknown kind", router.Config{Providers: []router.Provider{{Name: "x", Kind: "gemini", BaseURL: "http://h"}}}, "unknown kind"},
		{"no base url", router.Config{Providers: []router.Provider{{Name: "x", Kind: "openai"}}}, "no base URL"},
		{"unknown provider", router.Config{Targets: []router.Target{{Name: "t", Provider: "nope", Model: "m"}}}, "unknown provider"},
		{"unknown target", router.Config{Tiers: map[pipeline.Tier][]string{pipeline.TierFast: {"ghost"}}}, "unknown target"},
	}
	for _, c := range cases {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}

// The shared client keeps its HTTP/1.1 connections under concurrent load (an
// OpenAI-compatible server on plain HTTP, such as vLLM): a second wave of as
// many concurrent calls opens no new connection (Go's default transport keeps
// 2 idle per host and would re-dial the rest).
func TestSharedClientReusesConnections(t *testing.T) {
	s, err := sim.New(sim.Config{LatencyScale: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	var opened atomic.Int32
	hs := httptest.NewUnstartedServer(s.Handler())
	hs.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			opened.Add(1)
		}
	}
	hs.Start()
	defer hs.Close()
	c := newChainOfKind(t, router.KindOpenAI, hs.URL+"/v1", "k", nil, 1)
	wave := func() {
		var wg sync.WaitGroup
		for i := 0; i < 32; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if _, err := c.Complete(context.Background(), judgeRequest(pipeline.TierFast, fmt.Sprint(i))); err != nil {
					t.Error(err)
				}
			}(i)
		}
		wg.Wait()
	}
	wave()
	first := opened.Load()
	wave()
	if again := opened.Load() - first; again != 0 {
		t.Fatalf("second wave opened %d new connections (first opened %d)", again, first)
	}
}

// hedgedChain is a chain whose fast tier is model m at primaryURL, hedged
// with m at backupURL, each call tried once within timeout.
func hedgedChain(t *testing.T, primaryURL, backupURL string, timeout time.Duration) *router.Router {
	t.Helper()
	return newRouter(t, router.Config{
		Providers: []router.Provider{{Name: "a", Kind: router.KindOpenAI, BaseURL: primaryURL, APIKey: "k"}, {Name: "b", Kind: router.KindOpenAI, BaseURL: backupURL, APIKey: "k"}},
		Targets:   []router.Target{{Name: "primary", Provider: "a", Model: "m"}, {Name: "backup", Provider: "b", Model: "m"}},
		Tiers:     map[pipeline.Tier][]string{pipeline.TierFast: {"primary", "backup"}},
		Timeout:   timeout, Attempts: 1, Hedge: map[pipeline.Tier]bool{pipeline.TierFast: true},
	}, nil)
}

// warmUp sends n calls to the fast tier of c at once, so that its targets
// have a latency record, and ends the test when one fails.
func warmUp(t *testing.T, c *router.Router, n int) {
	t.Helper()
	var warm sync.WaitGroup
	for i := range n {
		warm.Go(func() {
			if _, err := c.Complete(context.Background(), judgeRequest(pipeline.TierFast, fmt.Sprint("warm ", i))); err != nil {
				t.Errorf("warm-up %d: %v", i, err)
			}
		})
	}
	if warm.Wait(); t.Failed() {
		t.FailNow()
	}
}

// A hedge: once the primary has a latency record, a call it does not answer
// within its p95 goes to the next target too; the first answer wins and the
// primary's request is cancelled (the simulator sees the cancellation).
func TestHedgeWinsAgainstASlowTarget(t *testing.T) {
	profile := map[string]sim.Profile{"m": {Latency: 20 * time.Millisecond, TokensPerSecond: 500}}
	slow, slowURL := simtest.Start(t, sim.Config{LatencyScale: 1, Profiles: profile})
	fast, fastURL := simtest.Start(t, sim.Config{LatencyScale: 1, Profiles: profile})
	c := hedgedChain(t, slowURL, fastURL, 5*time.Second)
	// A latency record for the primary, its calls together (one that starts
	// late may already be hedged).
	warmUp(t, c, 25)
	// Every warm-up call has reached the primary's end: answered or, a hedge
	// having won, cancelled there.
	deadline := time.Now().Add(5 * time.Second)
	for st := slow.Stats(); st.Requests != st.Completions+st.Cancelled; st = slow.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("the primary still has warm-up calls open: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancelledBefore, backupBefore := slow.Stats().Cancelled, fast.Stats().Requests
	if err := slow.SetFaults(sim.Faults{HangRate: 1}); err != nil { // the primary stops answering
		t.Fatal(err)
	}
	r, err := c.Complete(context.Background(), judgeRequest(pipeline.TierFast, "the hedged one"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Target != "backup" || !r.Hedged || !r.Fallback {
		t.Fatalf("response %+v: want the backup, hedged", r)
	}
	deadline = time.Now().Add(2 * time.Second)
	for slow.Stats().Cancelled == cancelledBefore && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c, b := slow.Stats().Cancelled-cancelledBefore, fast.Stats().Requests-backupBefore; c != 1 || b != 1 {
		t.Fatalf("primary cancelled %d, backup requests %d; want 1 and 1", c, b)
	}
}
