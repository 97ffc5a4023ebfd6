package router

import (
	"context"
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
	_, url := simtest.Start(t, sim.Config{})
	cache, err := NewCache(CacheConfig{TTL: DefaultCacheTTL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	r, err := New(Config{
		Providers: []Provider{{Name: "sim", Kind: KindSim, BaseURL: url, APIKey: "k"}},
		Targets:   []Target{{Name: "first", Provider: "sim", Model: DefaultReasoningModel}},
		Tiers:     map[pipeline.Tier][]string{pipeline.TierReasoning: {"first"}},
		Timeout:   2 * time.Second,
		Attempts:  1,
	}, cache, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
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
