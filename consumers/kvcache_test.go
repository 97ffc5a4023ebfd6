package consumers_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
)

// A claim left by a process that died while calling does not block the
// others: they wait a bounded time, then call the model themselves.
func TestDeadClaimHolderDoesNotBlock(t *testing.T) {
	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	ctx := context.Background()
	ttl := map[pipeline.Tier]time.Duration{pipeline.TierReasoning: time.Minute}
	dead, err := consumers.NewKVCache(ctx, js, ttl, consumers.StreamsConfig{}, time.Minute, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if granted, _ := dead.Lease(ctx, pipeline.TierReasoning, "k"); !granted {
		t.Fatal("first claim refused")
	}
	// ... and the holder dies without releasing it.

	alive, err := consumers.NewKVCache(ctx, js, ttl, consumers.StreamsConfig{}, time.Minute, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	cache, err := router.NewCache(router.CacheConfig{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	cache.SetShared(alive)
	jctx, cancel := context.WithTimeout(ctx, 3*time.Second) // a judge's timeout
	defer cancel()
	start := time.Now()
	r, err := cache.Do(jctx, pipeline.TierReasoning, "k", func(context.Context) (pipeline.Response, error) {
		return pipeline.Response{Content: "answered anyway"}, nil
	})
	if err != nil || r.Content != "answered anyway" {
		t.Fatalf("%+v %v", r, err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Fatalf("waited %s on a dead claim; a 3 s judge may wait a quarter of that", waited)
	}
	// The answer is now shared: another process finds it.
	time.Sleep(100 * time.Millisecond)
	if got, ok := dead.Get(ctx, pipeline.TierReasoning, "k"); !ok || got.Content != "answered anyway" {
		t.Fatalf("answer not shared: %+v %v", got, ok)
	}
}
