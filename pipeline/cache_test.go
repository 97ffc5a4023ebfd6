package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestCache(t *testing.T, ttl map[Tier]time.Duration) *Cache {
	t.Helper()
	c, err := NewCache(CacheConfig{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestCacheTTLPerTier(t *testing.T) {
	c := newTestCache(t, map[Tier]time.Duration{TierFast: 150 * time.Millisecond, TierReasoning: time.Hour})
	var calls atomic.Int32
	fn := func(context.Context) (Response, error) {
		calls.Add(1)
		return Response{Content: "answer"}, nil
	}
	ctx := context.Background()
	for _, tier := range []Tier{TierFast, TierReasoning, TierDeep} {
		r, err := c.Do(ctx, tier, "k-"+string(tier), fn)
		if err != nil || r.Cached {
			t.Fatalf("%s first call: %+v %v", tier, r, err)
		}
	}
	for _, tier := range []Tier{TierFast, TierReasoning} {
		if r, _ := c.Do(ctx, tier, "k-"+string(tier), fn); !r.Cached || r.Content != "answer" {
			t.Fatalf("%s second call was not a hit: %+v", tier, r)
		}
	}
	if r, _ := c.Do(ctx, TierDeep, "k-deep", fn); r.Cached {
		t.Fatal("deep has no TTL here and must not be cached")
	}
	time.Sleep(300 * time.Millisecond)
	if r, _ := c.Do(ctx, TierFast, "k-fast", fn); r.Cached {
		t.Fatal("fast answer outlived its TTL")
	}
	if r, _ := c.Do(ctx, TierReasoning, "k-reasoning", fn); !r.Cached {
		t.Fatal("reasoning answer expired early")
	}
	if got := calls.Load(); got != 5 {
		t.Fatalf("%d upstream calls, want 5", got)
	}
	if s := c.Stats(); s.Hits != 3 {
		t.Fatalf("stats %+v, want 3 hits", s)
	}
}

func TestCacheCoalescesInFlight(t *testing.T) {
	c := newTestCache(t, DefaultCacheTTL())
	var calls atomic.Int32
	release := make(chan struct{})
	fn := func(context.Context) (Response, error) {
		calls.Add(1)
		<-release
		return Response{Content: "shared"}, nil
	}
	var wg sync.WaitGroup
	results := make(chan Response, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Do(context.Background(), TierReasoning, "same", fn)
			if err != nil {
				t.Error(err)
			}
			results <- r
		}()
	}
	time.Sleep(100 * time.Millisecond) // let all 50 join the flight
	close(release)
	wg.Wait()
	close(results)
	for r := range results {
		if r.Content != "shared" {
			t.Fatalf("got %+v", r)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("%d upstream calls for 50 identical requests, want 1", calls.Load())
	}
}

func TestCacheNeverCachesErrors(t *testing.T) {
	c := newTestCache(t, DefaultCacheTTL())
	var calls atomic.Int32
	fn := func(context.Context) (Response, error) {
		if calls.Add(1) == 1 {
			return Response{}, fmt.Errorf("%w: 503", ErrTransient)
		}
		return Response{Content: "ok"}, nil
	}
	if _, err := c.Do(context.Background(), TierFast, "k", fn); !errors.Is(err, ErrTransient) {
		t.Fatalf("err = %v", err)
	}
	r, err := c.Do(context.Background(), TierFast, "k", fn)
	if err != nil || r.Content != "ok" || r.Cached {
		t.Fatalf("after an error: %+v %v", r, err)
	}
}

func TestCacheKey(t *testing.T) {
	base := Request{Tier: TierFast, Messages: []Message{{RoleSystem, "s"}, {RoleUser, "u"}}, Temperature: 0.3, MaxTokens: 512}
	k := CacheKey("nebius", "llama", base)
	if k != CacheKey("nebius", "llama", base) {
		t.Fatal("key is not deterministic")
	}
	variants := map[string]string{
		"provider":    CacheKey("modal", "llama", base),
		"model":       CacheKey("nebius", "qwen", base),
		"temperature": CacheKey("nebius", "llama", with(base, func(r *Request) { r.Temperature = 0 })),
		"max tokens":  CacheKey("nebius", "llama", with(base, func(r *Request) { r.MaxTokens = 511 })),
		"message":     CacheKey("nebius", "llama", with(base, func(r *Request) { r.Messages = []Message{{RoleSystem, "s"}, {RoleUser, "v"}} })),
		"boundary":    CacheKey("nebius", "llama", with(base, func(r *Request) { r.Messages = []Message{{RoleSystem, "su"}, {RoleUser, ""}} })),
	}
	for what, v := range variants {
		if v == k {
			t.Errorf("changing the %s does not change the key", what)
		}
	}
}

func with(r Request, f func(*Request)) Request {
	r.Messages = append([]Message(nil), r.Messages...)
	f(&r)
	return r
}
