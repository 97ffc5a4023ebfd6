package consumers_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
	if _, _, granted := dead.Claim(ctx, pipeline.TierReasoning, "k"); !granted {
		t.Fatal("first claim refused")
	}
	// ... and the holder dies without releasing it.

	cache := sharedCache(t, js, ttl)                        // another process
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
	// The answer is now shared (off the caller's path): another process finds it.
	var got pipeline.Response
	var ok bool
	natstest.Eventually(t, 5*time.Second, func() bool {
		got, ok, _ = dead.Claim(ctx, pipeline.TierReasoning, "k") // the key holds a claim until then: no new claim is made
		return ok && got.Content == "answered anyway"
	}, func() string { return fmt.Sprintf("answer not shared: %+v %v", got, ok) })
}

// The shared level is asked only when a model call outlasts many round
// trips to it: models that answer in microseconds go straight to the model
// (but for one leader in 64, which keeps the round trip measured); models
// that take a tenth of a second are shared across processes (a claim is a
// KV write: under the race detector on a busy machine it took over the
// 1.5 ms a 30 ms model allows).
func TestSharedLevelOnlyWhereItPays(t *testing.T) {
	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	ctx := context.Background()
	ttl := map[pipeline.Tier]time.Duration{pipeline.TierFast: time.Minute, pipeline.TierReasoning: time.Minute}
	cache := sharedCache(t, js, ttl)
	call := func(tier pipeline.Tier, n int, model time.Duration) {
		for i := range n {
			_, err := cache.Do(ctx, tier, fmt.Sprintf("%s-%d", tier, i), func(context.Context) (pipeline.Response, error) {
				time.Sleep(model)
				return pipeline.Response{Content: "x"}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	call(pipeline.TierFast, 256, 0)                        // instant: a local model
	call(pipeline.TierReasoning, 20, 100*time.Millisecond) // a remote one: asked while a KV round trip is under 5 ms
	fast, reasoning := cache.StatsByTier()[pipeline.TierFast], cache.StatsByTier()[pipeline.TierReasoning]
	if fast.SharedSkipped < 200 || fast.Misses != 256 {
		t.Errorf("instant model: %d of 256 calls skipped the shared level, want nearly all (all but the first and one in 64); %+v", fast.SharedSkipped, fast)
	}
	if reasoning.SharedSkipped != 0 || reasoning.Misses != 20 {
		t.Errorf("100 ms model: %d calls skipped the shared level, want none; %+v", reasoning.SharedSkipped, reasoning)
	}
}

// sharedCache is one process's answer cache with the KV bucket as its shared level.
func sharedCache(t *testing.T, js jetstream.JetStream, ttl map[pipeline.Tier]time.Duration) *router.Cache {
	t.Helper()
	kv, err := consumers.NewKVCache(context.Background(), js, ttl, consumers.StreamsConfig{}, time.Minute, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	cache, err := router.NewCache(router.CacheConfig{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	cache.SetShared(kv)
	return cache
}

// The cache buckets live in memory; one an earlier release kept on disk is
// replaced, since a stream's storage cannot change in place.
func TestCacheBucketsInMemoryReplacingFileBacked(t *testing.T) {
	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	ctx := context.Background()
	old, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: consumers.CacheBucket(pipeline.TierFast), Storage: jetstream.FileStorage, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Put(ctx, "answer.x", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	ttl := map[pipeline.Tier]time.Duration{pipeline.TierFast: time.Minute, pipeline.TierReasoning: time.Minute}
	for range 2 { // and again, now that they are in memory
		if _, err := consumers.NewKVCache(ctx, js, ttl, consumers.StreamsConfig{}, time.Minute, zerolog.Nop()); err != nil {
			t.Fatal(err)
		}
	}
	for tier := range ttl {
		kv, err := js.KeyValue(ctx, consumers.CacheBucket(tier))
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Storage; s != jetstream.MemoryStorage {
			t.Errorf("%s: storage %v, want memory", tier, s)
		}
	}
}

// A claim is one operation on the key itself: while it stands, another
// process waits; its answer replaces it; a failed call's claim is dropped,
// so the next process claims at once.
func TestClaimThenAnswerOrDrop(t *testing.T) {
	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	ctx := context.Background()
	ttl := map[pipeline.Tier]time.Duration{pipeline.TierFast: time.Minute}
	a, err := consumers.NewKVCache(ctx, js, ttl, consumers.StreamsConfig{}, time.Minute, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	b, err := consumers.NewKVCache(ctx, js, ttl, consumers.StreamsConfig{}, time.Minute, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	tier := pipeline.TierFast
	if _, found, granted := a.Claim(ctx, tier, "k1"); found || !granted {
		t.Fatalf("first claim: found %v, granted %v", found, granted)
	}
	if _, found, granted := b.Claim(ctx, tier, "k1"); found || granted {
		t.Fatalf("second claim while the first stands: found %v, granted %v", found, granted)
	}
	a.Settle(ctx, tier, "k1", pipeline.Response{Content: "the answer", Model: "m"}, nil)
	if r, found, _ := b.Claim(ctx, tier, "k1"); !found || r.Content != "the answer" {
		t.Fatalf("after the answer: %+v, found %v", r, found)
	}

	if _, _, granted := a.Claim(ctx, tier, "k2"); !granted {
		t.Fatal("claim on k2 refused")
	}
	a.Settle(ctx, tier, "k2", pipeline.Response{}, errors.New("the model failed"))
	if _, found, granted := b.Claim(ctx, tier, "k2"); found || !granted {
		t.Fatalf("after a failed call: found %v, granted %v; want the claim dropped", found, granted)
	}
}
