package router

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// Peek holds nothing Complete would not give: Complete does not ask a
// first target paused by a 429's Retry-After while another follows it, so
// Peek does not serve that target's cached answer (it did, and a judge
// heard at hand voted with another model's answer than Complete gave).
func TestPeekSkipsARateLimitedFirstTargetAsCompleteDoes(t *testing.T) {
	_, url := simtest.Start(t, sim.Config{})
	cache, err := NewCache(CacheConfig{TTL: DefaultCacheTTL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	cfg := Config{
		Providers: []Provider{{Name: "sim", Kind: KindSim, BaseURL: url, APIKey: "k"}},
		Targets: []Target{
			{Name: "first", Provider: "sim", Model: DefaultReasoningModel},
			{Name: "second", Provider: "sim", Model: DefaultDeepModel},
		},
		Tiers:    map[pipeline.Tier][]string{pipeline.TierReasoning: {"first", "second"}},
		Timeout:  2 * time.Second,
		Attempts: 1,
		Backoff:  10 * time.Millisecond,
	}
	r, err := New(cfg, cache, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	req := pipeline.Request{Tier: pipeline.TierReasoning, Temperature: 0.7, MaxTokens: 64, Messages: []pipeline.Message{
		{Role: pipeline.RoleSystem, Content: "You are VERITAS, the judge of truth"}, {Role: pipeline.RoleUser, Content: "a thought"}}}
	if _, err := r.Complete(context.Background(), req); err != nil { // cached at "first"
		t.Fatal(err)
	}
	r.targets["first"].block(time.Minute) // a 429 with Retry-After: 60
	held, ok := r.Peek(context.Background(), req)
	got, err := r.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if ok && (held.Target != got.Target || held.Model != got.Model || held.Fallback != got.Fallback) {
		t.Errorf("Peek held %s's answer (model %s, fallback %v); Complete gave %s's (model %s, fallback %v)",
			held.Target, held.Model, held.Fallback, got.Target, got.Model, got.Fallback)
	}
}

// An answer Complete cached for a request with a Digest is what Peek holds
// for that digest, before the asker has made the messages.
func TestPeekFindsAnAnswerByItsDigest(t *testing.T) {
	r := cachingRouter(t, 2*time.Second)
	digest := [32]byte{7}
	req := pipeline.Request{Tier: pipeline.TierReasoning, Temperature: 0.7, MaxTokens: 64, Digest: &digest, Messages: []pipeline.Message{
		{Role: pipeline.RoleSystem, Content: "You are VERITAS, the judge of truth"}, {Role: pipeline.RoleUser, Content: "a thought"}}}
	unmade := req
	unmade.Messages = nil
	if _, ok := r.Peek(context.Background(), unmade); ok {
		t.Fatal("Peek holds an answer before any was given")
	}
	asked, err := r.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	held, ok := r.Peek(context.Background(), unmade)
	if !ok || held.Content != asked.Content || !held.Cached {
		t.Fatalf("Peek by the digest: held %v (cached %v) %q, Complete gave %q", ok, held.Cached, held.Content, asked.Content)
	}
}

// A tribunal over a caching Router hears at hand only the answers given to
// the same judge on the same thought of the same agent: another agent's
// thought of the very same words is asked of every judge (the quoted
// thought names its agent, and each judge's digest covers it), no judge
// hears another's answer, and the first thought judged again is heard
// wholly at hand, each judge with its own answer (Peek's key is the one
// Complete cached under).
func TestTribunalHearsAtHandOnlyItsOwnQuestion(t *testing.T) {
	r := cachingRouter(t, 10*time.Second)
	c := &completions{Router: r}
	tr, err := pipeline.NewTribunal(c, pipeline.TribunalConfig{})
	if err != nil {
		t.Fatal(err)
	}
	judge := func(agent string) *pipeline.Verdict {
		t.Helper()
		out, err := tr.Process(context.Background(), pipeline.Thought{EventID: "e1", AgentID: agent,
			Content: pipeline.Content{UserInput: "delete the old logs to free disk space", Depth: 2}})
		if err != nil {
			t.Fatal(err)
		}
		return out.(*pipeline.Verdict)
	}
	asked := func() uint64 { return r.cache.Stats().Misses }
	alice := judge("alice")
	if n := asked(); n != 3 {
		t.Fatalf("alice's thought: %d judges asked, want 3 (one judge heard another's answer)", n)
	}
	judge("bob")
	if n := asked(); n != 6 {
		t.Fatalf("bob's thought of alice's words: %d judges asked in all, want 6 (bob heard alice's answers)", n)
	}
	completed := c.n.Load()
	again := judge("alice")
	if n := asked(); n != 6 {
		t.Fatalf("alice's thought again: %d judges asked in all, want still 6", n)
	}
	if n := c.n.Load() - completed; n != 0 {
		t.Errorf("alice's thought again: %d judges sent to Complete, want none (Peek missed the answers Complete cached)", n)
	}
	for i, j := range again.Judges {
		first := alice.Judges[i]
		if !j.Cached || j.Name != first.Name || j.Verdict != first.Verdict || j.Confidence != first.Confidence || j.Reasoning != first.Reasoning {
			t.Errorf("%s judged again: cached %v, %s %.2f %q; first %s %.2f %q",
				j.Name, j.Cached, j.Verdict, j.Confidence, j.Reasoning, first.Verdict, first.Confidence, first.Reasoning)
		}
	}
}

// completions is a Router that counts its Complete calls; Peek is the
// Router's own.
type completions struct {
	*Router
	n atomic.Int32
}

func (c *completions) Complete(ctx context.Context, req pipeline.Request) (pipeline.Response, error) {
	c.n.Add(1)
	return c.Router.Complete(ctx, req)
}

// cachingRouter is a router with a cache and one reasoning target, the
// simulator, whose calls time out after timeout; closed when the test ends.
func cachingRouter(t *testing.T, timeout time.Duration) *Router {
	r, _ := cachingRouterWith(t, func(cfg *Config) { cfg.Timeout = timeout })
	return r
}

// cachingRouterWith is cachingRouter with its config as set changes it
// (one attempt a call, a target named "first" of the reasoning tier), and
// the simulator it calls.
func cachingRouterWith(t *testing.T, set func(*Config)) (*Router, *sim.Server) {
	t.Helper()
	s, url := simtest.Start(t, sim.Config{})
	cache, err := NewCache(CacheConfig{TTL: DefaultCacheTTL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	cfg := Config{
		Providers: []Provider{{Name: "sim", Kind: KindSim, BaseURL: url, APIKey: "k"}},
		Targets:   []Target{{Name: "first", Provider: "sim", Model: DefaultReasoningModel}},
		Tiers:     map[pipeline.Tier][]string{pipeline.TierReasoning: {"first"}},
		Attempts:  1,
	}
	set(&cfg)
	r, err := New(cfg, cache, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, s
}
