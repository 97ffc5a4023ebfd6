package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
)

func newTestCache(t *testing.T, ttl map[pipeline.Tier]time.Duration) *Cache {
	t.Helper()
	c, err := NewCache(CacheConfig{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestCacheTTLPerTier(t *testing.T) {
	c := newTestCache(t, map[pipeline.Tier]time.Duration{pipeline.TierFast: 150 * time.Millisecond, pipeline.TierReasoning: time.Hour})
	var calls atomic.Int32
	fn := func(context.Context) (pipeline.Response, error) {
		calls.Add(1)
		return pipeline.Response{Content: "answer"}, nil
	}
	ctx := context.Background()
	for _, tier := range []pipeline.Tier{pipeline.TierFast, pipeline.TierReasoning, pipeline.TierDeep} {
		r, err := c.Do(ctx, tier, "k-"+string(tier), fn)
		if err != nil || r.Cached {
			t.Fatalf("%s first call: %+v %v", tier, r, err)
		}
	}
	for _, tier := range []pipeline.Tier{pipeline.TierFast, pipeline.TierReasoning} {
		if r, _ := c.Do(ctx, tier, "k-"+string(tier), fn); !r.Cached || r.Content != "answer" {
			t.Fatalf("%s second call was not a hit: %+v", tier, r)
		}
	}
	if r, _ := c.Do(ctx, pipeline.TierDeep, "k-deep", fn); r.Cached {
		t.Fatal("deep has no TTL here and must not be cached")
	}
	// The fast answer's TTL passes; the reasoning answer's has not.
	deadline := time.Now().Add(5 * time.Second)
	for _, ok := c.lookup("k-fast"); ok; _, ok = c.lookup("k-fast") {
		if time.Now().After(deadline) {
			t.Fatal("fast answer outlived its TTL by seconds")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r, _ := c.Do(ctx, pipeline.TierFast, "k-fast", fn); r.Cached {
		t.Fatal("fast answer outlived its TTL")
	}
	if r, _ := c.Do(ctx, pipeline.TierReasoning, "k-reasoning", fn); !r.Cached {
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
	fn := func(context.Context) (pipeline.Response, error) {
		calls.Add(1)
		<-release
		return pipeline.Response{Content: "shared"}, nil
	}
	var wg sync.WaitGroup
	results := make(chan pipeline.Response, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Do(context.Background(), pipeline.TierReasoning, "same", fn)
			if err != nil {
				t.Error(err)
			}
			results <- r
		}()
	}
	// Release the one upstream call once it is made: a caller that comes
	// later finds the answer stored or the flight in the air, never a call of its own.
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
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
	if s := c.Stats(); s.Coalesced+s.Hits != 49 {
		t.Fatalf("stats %+v: want the 49 other callers coalesced or served from the cache", s)
	}
}

func TestCacheNeverCachesErrors(t *testing.T) {
	c := newTestCache(t, DefaultCacheTTL())
	var calls atomic.Int32
	fn := func(context.Context) (pipeline.Response, error) {
		if calls.Add(1) == 1 {
			return pipeline.Response{}, fmt.Errorf("%w: 503", pipeline.ErrTransient)
		}
		return pipeline.Response{Content: "ok"}, nil
	}
	if _, err := c.Do(context.Background(), pipeline.TierFast, "k", fn); !errors.Is(err, pipeline.ErrTransient) {
		t.Fatalf("err = %v", err)
	}
	r, err := c.Do(context.Background(), pipeline.TierFast, "k", fn)
	if err != nil || r.Content != "ok" || r.Cached {
		t.Fatalf("after an error: %+v %v", r, err)
	}
}

func TestCacheKey(t *testing.T) {
	base := pipeline.Request{Tier: pipeline.TierFast, Messages: []pipeline.Message{{Role: pipeline.RoleSystem, Content: "s"}, {Role: pipeline.RoleUser, Content: "u"}}, Temperature: 0.3, MaxTokens: 512}
	k := CacheKey("nebius", "llama", base)
	if k != CacheKey("nebius", "llama", base) {
		t.Fatal("key is not deterministic")
	}
	variants := map[string]string{
		"provider":    CacheKey("modal", "llama", base),
		"model":       CacheKey("nebius", "qwen", base),
		"temperature": CacheKey("nebius", "llama", with(base, func(r *pipeline.Request) { r.Temperature = 0 })),
		"max tokens":  CacheKey("nebius", "llama", with(base, func(r *pipeline.Request) { r.MaxTokens = 511 })),
		"message": CacheKey("nebius", "llama", with(base, func(r *pipeline.Request) {
			r.Messages = []pipeline.Message{{Role: pipeline.RoleSystem, Content: "s"}, {Role: pipeline.RoleUser, Content: "v"}}
		})),
		"boundary": CacheKey("nebius", "llama", with(base, func(r *pipeline.Request) {
			r.Messages = []pipeline.Message{{Role: pipeline.RoleSystem, Content: "su"}, {Role: pipeline.RoleUser, Content: ""}}
		})),
	}
	for what, v := range variants {
		if v == k {
			t.Errorf("changing the %s does not change the key", what)
		}
	}
}

// Two requests that differ in any one thing that decides the answer get
// different keys; what only routes or labels the call (tier, target,
// purpose, priority, timeout) leaves the key as it is.
func TestCacheKeyTellsEveryFieldApart(t *testing.T) {
	base := pipeline.Request{Tier: pipeline.TierReasoning, Temperature: 0.6, MaxTokens: 4096, Schema: pipeline.VerdictSchema(),
		Messages: []pipeline.Message{{Role: pipeline.RoleSystem, Content: "judge"}, {Role: pipeline.RoleUser, Content: "thought"}}}
	key := func(r pipeline.Request) string { return CacheKey("nebius", "r1", r) }
	k := key(base)
	if len(k) != 64 || k != key(with(base, func(*pipeline.Request) {})) {
		t.Fatalf("key %q is not the same hex SHA-256 for a copy of the request", k)
	}
	variants := map[string]pipeline.Request{
		"temperature":      with(base, func(r *pipeline.Request) { r.Temperature = 0.61 }),
		"max tokens":       with(base, func(r *pipeline.Request) { r.MaxTokens = 4097 }),
		"first role":       with(base, func(r *pipeline.Request) { r.Messages[0].Role = pipeline.RoleUser }),
		"first content":    with(base, func(r *pipeline.Request) { r.Messages[0].Content = "judgE" }),
		"second role":      with(base, func(r *pipeline.Request) { r.Messages[1].Role = pipeline.RoleAssistant }),
		"second content":   with(base, func(r *pipeline.Request) { r.Messages[1].Content = "thought " }),
		"one message more": with(base, func(r *pipeline.Request) { r.Messages = append(r.Messages, pipeline.Message{}) }),
		"one message less": with(base, func(r *pipeline.Request) { r.Messages = r.Messages[:1] }),
		"messages swapped": with(base, func(r *pipeline.Request) { r.Messages[0], r.Messages[1] = r.Messages[1], r.Messages[0] }),
		"content across":   with(base, func(r *pipeline.Request) { r.Messages[0].Content, r.Messages[1].Content = "judget", "hought" }),
		"no schema":        with(base, func(r *pipeline.Request) { r.Schema = nil }),
		"schema name": with(base, func(r *pipeline.Request) {
			r.Schema = &pipeline.AnswerSchema{Name: "other", Schema: base.Schema.Schema}
		}),
		"schema body": with(base, func(r *pipeline.Request) {
			r.Schema = &pipeline.AnswerSchema{Name: base.Schema.Name, Schema: []byte(`{}`)}
		}),
		"schema as a message": with(base, func(r *pipeline.Request) {
			r.Schema = nil
			r.Messages = append(r.Messages, pipeline.Message{Role: pipeline.Role(base.Schema.Name), Content: string(base.Schema.Schema)})
		}),
	}
	seen := map[string]string{k: "the request"}
	for what, r := range variants {
		if other, ok := seen[key(r)]; ok {
			t.Errorf("%s: the same key as %s", what, other)
		}
		seen[key(r)] = what
	}
	if CacheKey("modal", "r1", base) == k || CacheKey("nebius", "r2", base) == k || CacheKey("nebiusr", "1", base) == k {
		t.Error("the provider or the model does not change the key")
	}
	same := with(base, func(r *pipeline.Request) {
		r.Tier, r.Target, r.Purpose, r.Priority, r.Timeout = pipeline.TierDeep, "other", "judge:SOPHIA", "batch", time.Second
	})
	if key(same) != k {
		t.Error("routing fields change the key")
	}
	// The schema counts by what it says, not by which value says it (its
	// digest is kept by the value: schemaDigests).
	for range 2 {
		if key(with(base, func(r *pipeline.Request) { r.Schema = pipeline.VerdictSchema() })) != k {
			t.Error("another value of the same schema changes the key")
		}
	}
}

func with(r pipeline.Request, f func(*pipeline.Request)) pipeline.Request {
	r.Messages = append([]pipeline.Message(nil), r.Messages...)
	f(&r)
	return r
}

// A request's Digest stands for its messages: the same digest is the same
// key whatever the messages (made or not), another digest another key, and
// no list of messages gives a digest's key.
func TestCacheKeyTakesTheDigestForTheMessages(t *testing.T) {
	d1, d2 := [32]byte{1}, [32]byte{2}
	base := pipeline.Request{Tier: pipeline.TierReasoning, Temperature: 0.6, MaxTokens: 4096, Digest: &d1,
		Messages: []pipeline.Message{{Role: pipeline.RoleSystem, Content: "judge"}, {Role: pipeline.RoleUser, Content: "thought"}}}
	key := func(r pipeline.Request) string { return CacheKey("nebius", "r1", r) }
	k := key(base)
	if key(with(base, func(r *pipeline.Request) { r.Messages = nil })) != k {
		t.Error("a request whose messages are not made yet has another key than the same request with them")
	}
	if key(with(base, func(r *pipeline.Request) { r.Digest = &d2 })) == k {
		t.Error("another digest, the same key")
	}
	if key(with(base, func(r *pipeline.Request) { r.Digest = nil })) == k {
		t.Error("the messages without their digest have the digest's key")
	}
	if key(with(base, func(r *pipeline.Request) { r.MaxTokens = 1 })) == k {
		t.Error("the digest hides the other fields")
	}
}

// panicOnce is an observer whose first CallStarted panics: a bug on the
// leader's path after its flight began, which the pool would recover.
type panicOnce struct{ started atomic.Int32 }

func (o *panicOnce) CallStarted(pipeline.Tier, Target) {
	if o.started.Add(1) == 1 {
		panic("observer")
	}
}
func (o *panicOnce) CallFinished(pipeline.Tier, Target, time.Duration, pipeline.Usage, float64, error) {
}

// A leader whose goroutine a panic unwinds still ends its flight: a caller
// waiting on it hears of the panic at once, and the next caller for the
// same request calls the model itself, instead of both waiting on a flight
// nobody will end until their deadlines.
func TestAPanicInTheLeaderEndsItsFlight(t *testing.T) {
	r, s := cachingRouterWith(t, func(cfg *Config) { cfg.Timeout, cfg.Observer = 5*time.Second, &panicOnce{} })
	cache := r.cache
	req := pipeline.Request{Tier: pipeline.TierReasoning, Messages: []pipeline.Message{{Role: pipeline.RoleUser, Content: "hello"}}, MaxTokens: 64}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the observer's panic did not reach the caller")
			}
		}()
		_, _ = r.Complete(context.Background(), req)
	}()
	cache.mu.Lock()
	open := len(cache.flights)
	cache.mu.Unlock()
	if open != 0 {
		t.Errorf("%d flights open after the leader's panic, want 0", open)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := r.Complete(ctx, req)
	if err != nil || resp.Content == "" || resp.Cached {
		t.Fatalf("the next caller: %+v, %v; want the model's own answer", resp, err)
	}
	if n := s.Stats().Requests; n != 1 {
		t.Errorf("the simulator was asked %d times, want 1 (the panic came before the first call was sent)", n)
	}
}

// A landed answer answers the callers that come before the store has taken
// it (land no longer waits for the store), and is forgotten once the store
// holds it. keep is held back at first, so the store's timing cannot decide
// the test.
func TestALandedAnswerAnswersUntilTheStoreHoldsIt(t *testing.T) {
	c := newTestCache(t, DefaultCacheTTL())
	close(c.quit) // keep returns: landed flights stay until it runs again
	c.kept.Wait()
	c.quit = make(chan struct{}) // for keep's next run, and Close
	var calls atomic.Int32
	fn := func(context.Context) (pipeline.Response, error) {
		calls.Add(1)
		return pipeline.Response{Content: "answer", Latency: time.Second, CostUSD: 0.01}, nil
	}
	ctx := context.Background()
	if r, err := c.Do(ctx, pipeline.TierReasoning, "k", fn); err != nil || r.Cached {
		t.Fatalf("first call: %+v %v", r, err)
	}
	for i := range 3 {
		r, err := c.Do(ctx, pipeline.TierReasoning, "k", fn)
		if err != nil || !r.Cached || r.Content != "answer" || r.Latency != 0 || r.CostUSD != 0 {
			t.Fatalf("call %d after the first: %+v %v; want a hit", i+2, r, err)
		}
	}
	if r, ok := c.Peek(pipeline.TierReasoning, "k"); !ok || r.Content != "answer" {
		t.Fatalf("Peek: %+v %v; want the landed answer", r, ok)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d model calls, want 1", n)
	}
	if s := c.Stats(); s.Hits != 4 || s.Coalesced != 0 {
		t.Fatalf("stats %+v, want 4 hits (three calls and a peek) and none coalesced", s)
	}
	// keep runs again; the next answer's land wakes it (not the first's,
	// taken away here), and it forgets both.
	select {
	case <-c.landing:
	default:
	}
	c.kept.Go(c.keep)
	if _, err := c.Do(ctx, pipeline.TierReasoning, "k2", fn); err != nil {
		t.Fatal(err)
	}
	deadline, poll := time.After(5*time.Second), time.NewTicker(5*time.Millisecond)
	defer poll.Stop()
	for {
		c.mu.Lock()
		open := len(c.flights)
		c.mu.Unlock()
		if open == 0 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("%d landed flights still held 5 s after keep ran", open)
		case <-poll.C:
		}
	}
	for _, k := range []string{"k", "k2"} {
		if r, ok := c.stored(k); !ok || r.Content != "answer" {
			t.Fatalf("the store's %s: %+v %v; want the answer once the flight is forgotten", k, r, ok)
		}
	}
}
