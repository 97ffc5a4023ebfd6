package router

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/noesis-dev/noesis/pipeline"
)

// CacheConfig sizes the answer cache and sets its TTL per tier.
type CacheConfig struct {
	// MaxBytes bounds the memory the cached answers take, each counted with
	// what the store spends on it besides its bytes (packed); 0 means 64 MiB.
	MaxBytes int64
	// TTL per tier; a missing or zero TTL turns caching off for that tier.
	TTL map[pipeline.Tier]time.Duration
	// Shared, when set, is a second level every worker process sees.
	Shared Shared
}

// DefaultCacheTTL returns the seed's TTLs: fast 1 min, reasoning 5 min, deep 30 min.
func DefaultCacheTTL() map[pipeline.Tier]time.Duration {
	return map[pipeline.Tier]time.Duration{pipeline.TierFast: time.Minute, pipeline.TierReasoning: 5 * time.Minute, pipeline.TierDeep: 30 * time.Minute}
}

// CacheStats counts what the cache did.
type CacheStats struct {
	Hits, Misses, Coalesced, Evictions uint64
	// SharedHits are answers found in the shared level (another process's);
	// SharedWaits are calls that waited for another process's call instead of making their own.
	SharedHits, SharedWaits uint64
	// SharedSkipped are calls that went straight to the model: it answers
	// faster than the shared level would (see worthSharing), or no other
	// worker was live (SetAlone).
	SharedSkipped uint64
}

// Shared is a second cache level that every worker process sees (a NATS KV
// bucket per tier, in consumers), so a thought answered by one process is a
// hit for all, and identical requests in flight in different processes share
// one upstream call. Its methods are best effort: a failure reads as a miss.
// Implementations must be safe for concurrent use.
type Shared interface {
	// Claim looks key up and, when no process has its answer or is getting
	// it, claims the upstream call in the same operation. It returns the
	// stored answer (found), or whether the claim was granted; neither: another
	// process holds the claim (Await).
	Claim(ctx context.Context, tier pipeline.Tier, key string) (r pipeline.Response, found, granted bool)
	// Settle ends a granted claim: it stores the answer, or with err drops
	// the claim so that waiting processes call themselves.
	Settle(ctx context.Context, tier pipeline.Tier, key string, r pipeline.Response, err error)
	// Await waits for another process's answer to key until ctx ends or its
	// claim lapses, and reports whether one came.
	Await(ctx context.Context, tier pipeline.Tier, key string) (pipeline.Response, bool)
}

// Cache keeps model answers for a TTL per tier, and makes identical requests
// that are in flight at the same time share one upstream call. Errors are
// never cached. Safe for concurrent use. Ristretto may drop a write under
// contention; a dropped write costs one more upstream call, never a wrong answer.
type Cache struct {
	store *ristretto.Cache[string, packed] // answers as pack makes them; read them with stored
	ttl   map[pipeline.Tier]time.Duration

	mu      sync.Mutex
	flights map[string]*flight // calls in flight, and landed ones until the store holds their answers (see land), by key
	// landed lists the flights landed with an answer that keep waits to
	// forget: once the store is seen to hold their answers. Guarded by mu.
	landed  []landedFlight
	landing chan struct{} // wakes keep; buffered 1
	quit    chan struct{} // closed by Close: keep returns
	kept    sync.WaitGroup
	shared  Shared
	// alone is set while this process is the only live worker (SetAlone):
	// the shared level is then neither asked nor told.
	alone atomic.Bool

	counts    map[pipeline.Tier]*tierCounts
	evictions atomic.Uint64

	// settles owns the goroutines that settle shared claims off the
	// callers' path; Close waits for them.
	settles   sync.WaitGroup
	closeOnce sync.Once
}

type tierCounts struct {
	hits, misses, coalesced, sharedHits, sharedWaits, sharedSkipped atomic.Uint64
	// The tier's model time and the shared level's round trip, as moving
	// averages in nanoseconds, and the leaders counted, for worthSharing.
	modelNS, sharedNS atomic.Int64
	leaders           atomic.Uint64
}

// sharedWorth is how many shared round trips a model call must outlast for
// the shared level to be asked first; sharedProbe is how often (one leader
// in so many) it is asked anyway, to keep its round trip measured.
const (
	sharedWorth = 20
	sharedProbe = 64
)

// worthSharing reports whether a leader should ask the shared level before
// calling the model: when a model call takes longer than sharedWorth round
// trips to it (or either is not known yet), and for one leader in
// sharedProbe. With models that answer in a millisecond (a local server, a
// cached proxy) the shared level would cost more than it saves.
func (t *tierCounts) worthSharing() bool {
	model, shared := t.modelNS.Load(), t.sharedNS.Load()
	if model == 0 || shared == 0 || model >= sharedWorth*shared {
		return true
	}
	return t.leaders.Load()%sharedProbe == 0
}

// average folds a sample into a moving average (weight 1/8); a lost update
// under contention only drops a sample.
func average(v *atomic.Int64, sample time.Duration) {
	old := v.Load()
	if old == 0 {
		v.Store(int64(sample))
		return
	}
	v.Store(old + (int64(sample)-old)/8)
}

func (t *tierCounts) stats() CacheStats {
	return CacheStats{Hits: t.hits.Load(), Misses: t.misses.Load(), Coalesced: t.coalesced.Load(), SharedHits: t.sharedHits.Load(), SharedWaits: t.sharedWaits.Load(), SharedSkipped: t.sharedSkipped.Load()}
}

// SetAlone tells the cache whether this process is the only live worker
// (the service watches the worker registry: shared.Registry.WatchOthers).
// While it is, the shared level is neither asked nor told: a claim and the
// answer's store were two KV writes a call, ~8 % of a lone worker's
// processor at the seed's latencies and most of what the NATS server stored
// for it, with no process to wait on the claim. What that gives up: a
// worker that joins later, or this one restarted, asks the model again for
// what was answered while it was alone (as with NOESIS_SHARED_CACHE=false),
// and a call made alone in the moments before a joining worker is seen may
// be made by both. Each costs upstream calls, never a wrong answer. A worker
// that joins is seen within moments of its first announcement (it announces
// before it takes a thought), and from then on every call is shared. Until
// the first SetAlone the shared level is used.
func (c *Cache) SetAlone(alone bool) {
	if c != nil {
		c.alone.Store(alone)
	}
}

// Alone reports what SetAlone last said (false before it is first called).
func (c *Cache) Alone() bool { return c != nil && c.alone.Load() }

// NewCache builds a cache. It fails when the store cannot be made.
func NewCache(cfg CacheConfig) (*Cache, error) {
	maxBytes := cfg.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 64 << 20
	}
	c := &Cache{ttl: map[pipeline.Tier]time.Duration{}, flights: map[string]*flight{}, counts: map[pipeline.Tier]*tierCounts{}, shared: cfg.Shared,
		landing: make(chan struct{}, 1), quit: make(chan struct{})}
	for _, t := range pipeline.Tiers {
		c.counts[t] = &tierCounts{}
	}
	for t, d := range cfg.TTL {
		c.ttl[t] = d
	}
	store, err := ristretto.NewCache(&ristretto.Config[string, packed]{
		NumCounters: max(maxBytes/100, 1000), // ten counters a KiB: ten an answer of ~1 KiB, five of the seed's ~500 B
		MaxCost:     maxBytes,
		BufferItems: 64,
		// An answer's cost counts the store's item already (packedOverhead):
		// ristretto would add its 56 bytes an item a second time.
		IgnoreInternalCost: true,
		OnEvict:            func(*ristretto.Item[packed]) { c.evictions.Add(1) },
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c.store = store
	c.kept.Go(c.keep)
	return c, nil
}

// Close waits for the shared claims being settled, then releases the
// cache's goroutines. Call it once no call through the cache is in flight;
// safe to call twice.
func (c *Cache) Close() {
	c.closeOnce.Do(func() {
		c.settles.Wait()
		close(c.quit)
		c.kept.Wait()
		c.store.Close()
	})
}

// Stats returns the cache's counters so far, all tiers together.
func (c *Cache) Stats() CacheStats {
	var s CacheStats
	for _, t := range c.StatsByTier() {
		s.Hits, s.Misses, s.Coalesced, s.SharedHits, s.SharedWaits = s.Hits+t.Hits, s.Misses+t.Misses, s.Coalesced+t.Coalesced, s.SharedHits+t.SharedHits, s.SharedWaits+t.SharedWaits
		s.SharedSkipped += t.SharedSkipped
	}
	s.Evictions = c.evictions.Load()
	return s
}

// StatsByTier returns the counters of each tier (evictions are not split by tier).
func (c *Cache) StatsByTier() map[pipeline.Tier]CacheStats {
	out := make(map[pipeline.Tier]CacheStats, len(c.counts))
	for t, n := range c.counts {
		out[t] = n.stats()
	}
	return out
}

func (c *Cache) count(t pipeline.Tier) *tierCounts {
	if n, ok := c.counts[t]; ok {
		return n
	}
	return c.counts[pipeline.TierFast] // unknown tiers are counted as fast; pipeline.Request.Tier is always one of pipeline.Tiers
}

// TTL returns the TTL for tier t (0: not cached).
func (c *Cache) TTL(t pipeline.Tier) time.Duration { return c.ttl[t] }

// Peek returns the answer cached in this process for key, as Do returns a
// hit (Cached set, no latency or cost), without waiting or calling; ok is
// false when there is none.
func (c *Cache) Peek(tier pipeline.Tier, key string) (r pipeline.Response, ok bool) {
	if c == nil || c.ttl[tier] <= 0 {
		return r, false
	}
	if r, ok = c.lookup(key); !ok {
		return r, false
	}
	c.count(tier).hits.Add(1)
	return asHit(r), true
}

// asHit is r as a cache hit returns it: Cached, with no latency or cost of
// its own.
func asHit(r pipeline.Response) pipeline.Response {
	r.Cached, r.Latency, r.CostUSD = true, 0, 0
	return r
}

// stored returns the answer the store holds for key.
func (c *Cache) stored(key string) (pipeline.Response, bool) {
	if p, ok := c.store.Get(key); ok {
		return p.unpack()
	}
	return pipeline.Response{}, false
}

// lookup returns the answer this process holds for key: in the store, or
// in a flight landed with it that keep has not forgotten yet.
func (c *Cache) lookup(key string) (pipeline.Response, bool) {
	if r, ok := c.stored(key); ok {
		return r, true
	}
	c.mu.Lock()
	f := c.flights[key]
	c.mu.Unlock()
	if f != nil && f.stored.Load() {
		return f.resp, true
	}
	return pipeline.Response{}, false
}

// Do returns the cached answer for key, or calls fn once for all the callers
// asking for key at that moment and caches its answer for the tier's TTL.
// A hit comes back with Cached set. A caller whose context ends stops waiting;
// a caller that waited on another caller's call which was cancelled calls fn itself.
//
// The router does not call Do: it takes Do's three steps itself (join, ask,
// land), so that its call to the model is made from its own shallow frame,
// not from inside Do's and a closure's (see Router.viaCache).
func (c *Cache) Do(ctx context.Context, tier pipeline.Tier, key string, fn func(context.Context) (pipeline.Response, error)) (pipeline.Response, error) {
	if !c.On(tier) {
		return fn(ctx)
	}
	r, f, err := c.join(ctx, tier, key)
	if f == nil {
		return r, err
	}
	defer c.unwind(ctx, tier, key, f)
	r, found := c.ask(ctx, tier, key, f)
	if !found {
		r, err = fn(ctx)
	}
	return c.land(ctx, tier, key, f, r, err)
}

// On reports whether answers of tier are cached: c is not nil and gives the tier a TTL.
func (c *Cache) On(tier pipeline.Tier) bool { return c != nil && c.ttl[tier] > 0 }

// join is a caller's way in for key: the answer cached in this process (a
// hit), or the answer or error of another caller's call for key that it
// waited for, or else (f not nil) a flight of its own, which the caller
// leads: it asks the shared level (ask), then the model when that has no
// answer, and ends the flight with land, whatever happened.
func (c *Cache) join(ctx context.Context, tier pipeline.Tier, key string) (pipeline.Response, *flight, error) {
	if r, ok := c.stored(key); ok {
		c.count(tier).hits.Add(1)
		return asHit(r), nil, nil
	}
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		f, shared := c.flights[key]
		if !shared {
			f = &flight{done: make(chan struct{})}
			c.flights[key] = f
		}
		c.mu.Unlock()
		if !shared {
			return pipeline.Response{}, f, nil
		}
		if f.stored.Load() { // landed with its answer: as good as the store's
			c.count(tier).hits.Add(1)
			return asHit(f.resp), nil, nil
		}
		select {
		case <-ctx.Done():
			return pipeline.Response{}, nil, fmt.Errorf("%w: %w", pipeline.ErrTransient, ctx.Err())
		case <-f.done:
		}
		c.count(tier).coalesced.Add(1)
		if f.err != nil {
			if attempt == 0 && ctx.Err() == nil && errors.Is(f.err, context.Canceled) {
				continue // the leader's call was cancelled, not ours
			}
			return pipeline.Response{}, nil, f.err
		}
		return f.resp, nil, nil
	}
}

// ask answers flight f's leader from the shared level when another process
// has the answer or is getting it (found); otherwise the leader calls the
// model, and f remembers what ask claimed for land to settle.
func (c *Cache) ask(ctx context.Context, tier pipeline.Tier, key string, f *flight) (pipeline.Response, bool) {
	n := c.count(tier)
	n.leaders.Add(1)
	switch {
	case c.shared == nil:
	case c.alone.Load() || !n.worthSharing():
		n.sharedSkipped.Add(1)
	default:
		start := time.Now()
		r, found, granted := c.shared.Claim(ctx, tier, key)
		average(&n.sharedNS, time.Since(start))
		if found {
			n.sharedHits.Add(1)
			return asHit(r), true
		}
		if !granted {
			n.sharedWaits.Add(1)
			if r, ok := c.shared.Await(ctx, tier, key); ok {
				n.sharedHits.Add(1)
				return asHit(r), true
			}
		}
		f.asked, f.granted = true, granted
	}
	n.misses.Add(1)
	f.called = time.Now()
	return pipeline.Response{}, false
}

// land ends flight f with its answer r or error err: the model's, when ask
// found none, timed for worthSharing and shared with the other processes
// (or its claim dropped); an answer is cached for the tier's TTL. The
// callers waiting on f are woken, and later ones find the answer cached.
func (c *Cache) land(ctx context.Context, tier pipeline.Tier, key string, f *flight, r pipeline.Response, err error) (pipeline.Response, error) {
	if !f.called.IsZero() {
		if err == nil {
			average(&c.count(tier).modelNS, time.Since(f.called))
		}
		if f.asked && (f.granted || err == nil) {
			// Sharing the answer (or dropping the claim) is off the caller's
			// path: other processes wait on the claim until it is settled. An
			// answer made after waiting in vain is shared too.
			sctx := context.WithoutCancel(ctx)
			c.settles.Go(func() {
				ctx, cancel := context.WithTimeout(sctx, 10*time.Second)
				defer cancel()
				c.shared.Settle(ctx, tier, key, r, err)
			})
		}
	}
	f.resp, f.err, f.landed = r, err, true
	var kept bool
	if err == nil {
		p := pack(r)
		kept = c.store.SetWithTTL(key, p, p.cost(), c.ttl[tier])
	}
	c.mu.Lock()
	if kept {
		// The store takes the answer in its own goroutine, a moment later.
		// Until keep sees it there, the landed flight answers later callers
		// (join, lookup): the caller does not wait for the store (its Wait
		// was a sleep and a wake-up on every answer's path, behind the
		// store's goroutine on a busy machine).
		f.stored.Store(true)
		c.landed = append(c.landed, landedFlight{key, f})
	} else {
		delete(c.flights, key)
	}
	c.mu.Unlock()
	close(f.done)
	if kept {
		select {
		case c.landing <- struct{}{}:
		default: // keep is already woken
		}
	}
	return r, err
}

// landedFlight is a flight landed with an answer, and its key.
type landedFlight struct {
	key string
	f   *flight
}

// keep forgets landed flights once the store holds their answers: each
// time land wakes it, it takes the flights landed so far, waits for the
// store to have taken every write made before (one Wait for them all), and
// removes those flights. A write the store dropped (it may, under
// contention) then costs one more model call, as before. It returns when
// Close closes quit.
func (c *Cache) keep() {
	var batch []landedFlight
	for {
		select {
		case <-c.quit:
			return
		case <-c.landing:
		}
		c.mu.Lock()
		batch, c.landed = c.landed, batch[:0]
		c.mu.Unlock()
		c.store.Wait()
		c.mu.Lock()
		for _, l := range batch {
			if c.flights[l.key] == l.f {
				delete(c.flights, l.key)
			}
		}
		c.mu.Unlock()
		clear(batch) // drop the answers the flights hold
	}
}

// unwind, deferred by a flight's leader, lands the flight when a panic
// unwinds the leader's goroutine before it did (the pool recovers a
// delivery's panic and goes on): the callers waiting on it get an error
// instead of waiting until their deadline, the process's next caller leads
// a flight of its own, and a shared claim is dropped. It does nothing after
// land.
func (c *Cache) unwind(ctx context.Context, tier pipeline.Tier, key string, f *flight) {
	if f.landed {
		return
	}
	_, _ = c.land(ctx, tier, key, f, pipeline.Response{}, fmt.Errorf("%w: %w: the call this one waited on panicked", pipeline.ErrTransient, pipeline.ErrPanic))
}

// flight is one upstream call that identical requests wait on.
type flight struct {
	done chan struct{}
	resp pipeline.Response
	err  error
	// Its leader's, between ask and land: when it called the model
	// (zero: it did not), and whether it asked the shared level and was
	// granted the claim there.
	called         time.Time
	asked, granted bool
	landed         bool        // land ran (see unwind)
	stored         atomic.Bool // landed with an answer given to the store: it answers as the store would (see land)
}

// keyBufs holds the buffers CacheKey encodes requests in: a judge's
// request is a few KiB, and a key is made for every call.
var keyBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxKeyBuf is the largest buffer kept for the next key; a longer request's
// goes to the garbage collector.
const maxKeyBuf = 64 << 10

// CacheKey hashes everything that decides a model's answer: provider, model,
// the prompt version, temperature, max tokens, the messages (or the digest
// that stands for them, req.Digest) and the answer schema. The key is the
// hex SHA-256 of one encoding of them in which every string is
// length-prefixed and the messages are counted, so identical
// requests get the same key in every process and requests that differ in any
// of those get different ones. The encoding is made in a pooled buffer and
// hashed in one call (sha256.Sum256), not written piece by piece into a
// hash.Hash, which copied each string. A change of the encoding changes
// every key: it costs only the answers cached under the old keys, in memory
// and in the shared level, until their TTL. Safe for concurrent use.
func CacheKey(provider, model string, req pipeline.Request) string {
	return cacheKey(provider, model, &req)
}

// cacheKey is CacheKey of *req.
func cacheKey(provider, model string, req *pipeline.Request) string {
	bp := keyBufs.Get().(*[]byte)
	b := appendKeyField((*bp)[:0], provider)
	b = appendKeyField(b, model)
	b = appendKeyField(b, pipeline.PromptVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(math.Float32bits(req.Temperature)))
	b = binary.LittleEndian.AppendUint64(b, uint64(req.MaxTokens))
	if req.Digest != nil {
		// The caller's digest of the messages stands for them (pipeline's
		// Request.Digest), after a count no list of messages can have.
		b = binary.LittleEndian.AppendUint64(b, math.MaxUint64)
		b = append(b, req.Digest[:]...)
	} else {
		b = binary.LittleEndian.AppendUint64(b, uint64(len(req.Messages)))
		for _, m := range req.Messages {
			b = appendKeyField(b, string(m.Role))
			b = appendKeyField(b, m.Content)
		}
	}
	if req.Schema != nil { // an answer asked in a schema is not one asked in text
		d := schemaDigest(req.Schema)
		b = append(append(b, 1), d[:]...)
	} else {
		b = append(b, 0)
	}
	sum := sha256.Sum256(b)
	if cap(b) <= maxKeyBuf {
		*bp = b
		keyBufs.Put(bp)
	}
	var key [2 * sha256.Size]byte
	hex.Encode(key[:], sum[:])
	return string(key[:])
}

// schemaDigests holds the SHA-256 of each answer schema's name and schema,
// by the schema: every judge's request carries the same one
// (pipeline.VerdictSchema, 1.3 KB), hashed into its key each time before.
// A schema is read-only once in a request (pipeline.AnswerSchema), and the
// map keeps it alive, so its address names its bytes. At most
// maxSchemaDigests are kept; others are hashed each time.
var schemaDigests sync.Map // *pipeline.AnswerSchema -> *[sha256.Size]byte

var schemaDigestCount atomic.Int32

const maxSchemaDigests = 64

// schemaDigest is s's digest in schemaDigests, made when it is not there.
func schemaDigest(s *pipeline.AnswerSchema) *[sha256.Size]byte {
	if d, ok := schemaDigests.Load(s); ok {
		return d.(*[sha256.Size]byte)
	}
	b := appendKeyField(appendKeyField(nil, s.Name), s.Schema)
	d := new([sha256.Size]byte)
	*d = sha256.Sum256(b)
	if schemaDigestCount.Load() < maxSchemaDigests && schemaDigestCount.Add(1) <= maxSchemaDigests {
		schemaDigests.Store(s, d)
	}
	return d
}

// appendKeyField appends s to a key's encoding, after its length.
func appendKeyField[S ~string | ~[]byte](b []byte, s S) []byte {
	return append(binary.LittleEndian.AppendUint64(b, uint64(len(s))), s...)
}
