package shared_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/shared"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// A claim left by a process that died while calling does not block the
// others: they wait a bounded time, then call the model themselves.
func TestDeadClaimHolderDoesNotBlock(t *testing.T) {
	js := natstest.JetStream(t)
	ctx := context.Background()
	ttl := map[pipeline.Tier]time.Duration{pipeline.TierReasoning: time.Minute}
	dead := newAnswers(t, js, ttl)
	if _, _, granted := dead.Claim(ctx, pipeline.TierReasoning, "k"); !granted {
		t.Fatal("first claim refused")
	}
	// ... and the holder dies without releasing it.

	cache := sharedCache(t, js, ttl)                        // another process
	jctx, cancel := context.WithTimeout(ctx, 3*time.Second) // a judge's timeout
	defer cancel()
	r, err := cache.Do(jctx, pipeline.TierReasoning, "k", func(context.Context) (pipeline.Response, error) {
		return pipeline.Response{Content: "answered anyway"}, nil
	})
	if err != nil || r.Content != "answered anyway" || jctx.Err() != nil {
		t.Fatalf("%+v %v (judge's context: %v): want an answer of its own within the judge's timeout", r, err, jctx.Err())
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
	js := natstest.JetStream(t)
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

// A worker alone (router.Cache.SetAlone) neither claims nor stores in the
// shared level, even for a model slow enough to share; once another worker
// is live, its calls are shared again.
func TestAloneTheSharedLevelIsNotAsked(t *testing.T) {
	js := natstest.JetStream(t)
	ctx := context.Background()
	ttl := map[pipeline.Tier]time.Duration{pipeline.TierReasoning: time.Minute}
	cache := sharedCache(t, js, ttl)
	call := func(key string) {
		_, err := cache.Do(ctx, pipeline.TierReasoning, key, func(context.Context) (pipeline.Response, error) {
			time.Sleep(50 * time.Millisecond) // a remote model: worth sharing
			return pipeline.Response{Content: "x"}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	kv, err := js.KeyValue(ctx, shared.CacheBucket(pipeline.TierReasoning))
	if err != nil {
		t.Fatal(err)
	}
	cache.SetAlone(true)
	for i := range 5 {
		call(fmt.Sprintf("alone-%d", i))
	}
	if st := cache.StatsByTier()[pipeline.TierReasoning]; st.SharedSkipped != 5 || st.Misses != 5 {
		t.Errorf("alone: %+v, want 5 misses, all skipping the shared level", st)
	}
	cache.Close() // waits for any answer being shared
	if keys, err := kv.Keys(ctx); !errors.Is(err, jetstream.ErrNoKeysFound) {
		t.Fatalf("alone, the shared level holds %v (%v), want nothing", keys, err)
	}

	cache = sharedCache(t, js, ttl)
	cache.SetAlone(false) // another worker announced itself
	call("shared-1")
	cache.Close()
	if keys, err := kv.Keys(ctx); err != nil || len(keys) != 1 || keys[0] != "answer.shared-1" {
		t.Fatalf("with another worker live, the shared level holds %v (%v), want the one answer", keys, err)
	}
}

// newAnswers is one process's shared answers for the tiers of ttl, its
// claims leased for a minute.
func newAnswers(t *testing.T, js jetstream.JetStream, ttl map[pipeline.Tier]time.Duration) *shared.Answers {
	t.Helper()
	a, err := shared.NewAnswers(context.Background(), js, ttl, shared.BucketConfig{}, time.Minute, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// sharedCache is one process's answer cache with the KV bucket as its shared level.
func sharedCache(t *testing.T, js jetstream.JetStream, ttl map[pipeline.Tier]time.Duration) *router.Cache {
	t.Helper()
	cache, err := router.NewCache(router.CacheConfig{TTL: ttl, Shared: newAnswers(t, js, ttl)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	return cache
}

// The cache buckets live in memory; one an earlier release kept on disk is
// replaced, since a stream's storage cannot change in place.
func TestCacheBucketsInMemoryReplacingFileBacked(t *testing.T) {
	js := natstest.JetStream(t)
	ctx := context.Background()
	old, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: shared.CacheBucket(pipeline.TierFast), Storage: jetstream.FileStorage, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Put(ctx, "answer.x", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	ttl := map[pipeline.Tier]time.Duration{pipeline.TierFast: time.Minute, pipeline.TierReasoning: time.Minute}
	for range 2 { // and again, now that they are in memory
		newAnswers(t, js, ttl)
	}
	for tier := range ttl {
		kv, err := js.KeyValue(ctx, shared.CacheBucket(tier))
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
	js := natstest.JetStream(t)
	ctx := context.Background()
	ttl := map[pipeline.Tier]time.Duration{pipeline.TierFast: time.Minute}
	a, b := newAnswers(t, js, ttl), newAnswers(t, js, ttl)
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

// badAnswers are entries of a cache bucket that are no answer: what an
// agent's PubAck wrote over one, text, and answers with no content.
var badAnswers = []struct{ name, value string }{
	{"puback", `{"stream":"NOESIS_THOUGHTS","seq":7}`},
	{"text", "garbage"},
	{"empty content", `{"content":"","provider":"sim","model":"m"}`},
	{"blank content", `{"content":" \n ","provider":"sim","model":"m"}`},
	{"null", "null"},
}

// An entry that is neither a claim nor an answer with content is a miss:
// never served, logged, the caller may call (and its answer replaces the
// entry), and a process waiting on the key stops waiting at once.
func TestUnreadableCachedAnswerIsAMiss(t *testing.T) {
	js := natstest.JetStream(t)
	ctx := context.Background()
	tier := pipeline.TierFast
	var logs lockedBuffer
	c, err := shared.NewAnswers(ctx, js, map[pipeline.Tier]time.Duration{tier: time.Minute}, shared.BucketConfig{}, time.Minute, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, shared.CacheBucket(tier))
	if err != nil {
		t.Fatal(err)
	}
	for i, bad := range badAnswers {
		key := fmt.Sprintf("k%d", i)
		if _, err := kv.Put(ctx, "answer."+key, []byte(bad.value)); err != nil {
			t.Fatal(err)
		}
		if r, found, granted := c.Claim(ctx, tier, key); found || !granted {
			t.Errorf("%s: found %v (%+v), granted %v; want a miss the caller answers", bad.name, found, r, granted)
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if r, ok := c.Await(actx, tier, key); ok {
			t.Errorf("%s: awaited and served %+v", bad.name, r)
		}
		if actx.Err() != nil {
			t.Errorf("%s: waited until the caller gave up for an answer that cannot come", bad.name)
		}
		cancel()
		c.Settle(ctx, tier, key, pipeline.Response{Content: "the answer"}, nil)
		if r, found, _ := c.Claim(ctx, tier, key); !found || r.Content != "the answer" {
			t.Errorf("%s: after the call's answer: %+v, found %v", bad.name, r, found)
		}
	}
	if out := logs.String(); strings.Count(out, `"level":"warn"`) < len(badAnswers) || !strings.Contains(out, "answer.k0") {
		t.Errorf("bad entries not logged at warn level with their key:\n%s", out)
	}

	// An answer with no content is never stored: the claim goes instead.
	if _, _, granted := c.Claim(ctx, tier, "none"); !granted {
		t.Fatal("claim refused")
	}
	c.Settle(ctx, tier, "none", pipeline.Response{Content: ""}, nil)
	if _, err := kv.Get(ctx, "answer.none"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("after an empty answer the key holds something (%v), want nothing", err)
	}
}

// A narrative whose answer an agent replaced in the shared cache with an
// empty one (or any entry that is no answer) is narrated by the model, not
// served the empty answer until it is dead-lettered.
func TestEmptyCachedAnswerIsNeverANarrative(t *testing.T) {
	js := natstest.JetStream(t)
	ctx := t.Context()
	if err := consumers.EnsureStreams(ctx, js, consumers.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	// A model that takes a fifth of the seed's time (227 ms for the narrator):
	// the shared level is asked only when a call outlasts 20 of its round
	// trips (router's worthSharing), and an instant model would have the
	// later thoughts skip it, leaving their poisoned keys as they were.
	s, url := simtest.Start(t, sim.Config{LatencyScale: 0.2})
	tier := pipeline.TierFast
	cache := sharedCache(t, js, map[pipeline.Tier]time.Duration{tier: time.Minute})
	chain, err := router.New(router.Config{
		Providers: []router.Provider{{Name: "sim", Kind: router.KindSim, BaseURL: url, APIKey: "k"}},
		Targets:   []router.Target{{Name: "fast", Provider: "sim", Model: router.DefaultFastModel}},
		Tiers:     map[pipeline.Tier][]string{tier: {"fast"}},
		Timeout:   5 * time.Second, Attempts: 1, Backoff: 10 * time.Millisecond,
	}, cache, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chain.Close)
	bridge := &pipeline.Bridge{Completer: chain}

	kv, err := js.KeyValue(ctx, shared.CacheBucket(tier))
	if err != nil {
		t.Fatal(err)
	}
	poisoned := map[string]string{} // cache key -> event
	for i, bad := range badAnswers {
		th := pipeline.Thought{EventID: fmt.Sprintf("bob-%d", i), AgentID: "bob", Content: pipeline.Content{UserInput: "I will rotate the keys, take " + bad.name}}
		// The key the narrative's call is cached under, as the attacker computed it.
		key := router.CacheKey("sim", router.DefaultFastModel, pipeline.Request{Tier: tier, Messages: bridge.Messages(&th), Temperature: 0.3, MaxTokens: 512})
		if _, err := kv.Put(ctx, "answer."+key, []byte(bad.value)); err != nil {
			t.Fatal(err)
		}
		poisoned[key] = th.EventID
		body, _ := json.Marshal(th)
		if _, err := js.Publish(ctx, consumers.ThoughtSubject(th.AgentID), body); err != nil {
			t.Fatal(err)
		}
	}

	pool, err := consumers.NewPool(js, consumers.PoolConfig{Stage: pipeline.StageNarrative, RetryDelay: 10 * time.Millisecond}, bridge.Process, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = pool.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	natstest.Eventually(t, 20*time.Second, func() bool { st := pool.Stats(); return st.Published+st.DeadLettered == uint64(len(badAnswers)) },
		func() string { return fmt.Sprintf("pool stats %+v", pool.Stats()) })
	if st := pool.Stats(); st.Published != uint64(len(badAnswers)) || st.DeadLettered != 0 {
		t.Errorf("pool stats %+v: want every narrative published, none dead-lettered", st)
	}
	if n := s.Stats().PerModel[router.DefaultFastModel]; n != int64(len(badAnswers)) {
		t.Errorf("the narrator was called %d times, want %d (once per thought)", n, len(badAnswers))
	}
	// The poisoned keys were the narratives' own: each now holds the answer the model gave.
	for key, event := range poisoned {
		natstest.Eventually(t, 5*time.Second, func() bool {
			e, err := kv.Get(ctx, "answer."+key)
			var a struct{ Content string }
			return err == nil && json.Unmarshal(e.Value(), &a) == nil && strings.TrimSpace(a.Content) != ""
		}, func() string {
			return event + ": its cache key does not hold the model's answer: the test poisoned another key"
		})
	}
}
