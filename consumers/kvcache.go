package consumers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
)

// KVCache is the answer cache every worker process shares: one NATS KV bucket
// per tier, in memory, (noesis_cache_fast, ..._reasoning, ..._deep) whose TTL is the
// tier's, plus short-lived claims ("lease.<key>") so that identical requests
// in flight in different processes make one upstream call. Safe for
// concurrent use.
type KVCache struct {
	buckets  map[pipeline.Tier]jetstream.KeyValue
	leaseTTL time.Duration
	owner    []byte
	log      zerolog.Logger
}

// CacheBucket names a tier's bucket.
func CacheBucket(t pipeline.Tier) string { return "noesis_cache_" + string(t) }

// NewKVCache creates or updates the buckets for the tiers with a TTL above 0.
// leaseTTL bounds how long a claim outlives a process that died holding it.
func NewKVCache(ctx context.Context, js jetstream.JetStream, ttl map[pipeline.Tier]time.Duration, cfg StreamsConfig, leaseTTL time.Duration, log zerolog.Logger) (*KVCache, error) {
	cfg = cfg.withDefaults()
	host, _ := os.Hostname()
	c := &KVCache{buckets: map[pipeline.Tier]jetstream.KeyValue{}, leaseTTL: leaseTTL,
		owner: []byte(host + ":" + strconv.Itoa(os.Getpid())), log: log.With().Str("component", "kvcache").Logger()}
	for t, d := range ttl {
		if d <= 0 {
			continue
		}
		var kv jetstream.KeyValue
		err := retryUnavailable(ctx, "cache bucket "+CacheBucket(t), func(ctx context.Context) (err error) {
			if err := dropFileBackedCache(ctx, js, CacheBucket(t)); err != nil {
				return err
			}
			kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket: CacheBucket(t), Description: fmt.Sprintf("noesis: %s tier answers, shared by every worker", t),
				TTL: d, LimitMarkerTTL: max(d, leaseTTL), Storage: jetstream.MemoryStorage, Replicas: cfg.Replicas, History: 1,
			})
			return err
		})
		if err != nil {
			return nil, err
		}
		c.buckets[t] = kv
	}
	return c, nil
}

// dropFileBackedCache deletes a cache bucket an earlier release kept on
// disk: the buckets are in memory now (a cache lost with a server restart
// costs only calls made again, and a memory write takes the server a
// fraction of a file write), and a stream's storage cannot be changed in
// place.
func dropFileBackedCache(ctx context.Context, js jetstream.JetStream, bucket string) error {
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return err
	}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok && bs.StreamInfo().Config.Storage == jetstream.MemoryStorage {
		return nil
	}
	return js.DeleteKeyValue(ctx, bucket)
}

type storedAnswer struct {
	Content   string         `json:"content"`
	Reasoning string         `json:"reasoning,omitempty"`
	Provider  string         `json:"provider"`
	Model     string         `json:"model"`
	Usage     pipeline.Usage `json:"usage"`
}

// opTimeout bounds each shared-cache operation: when NATS is slow (a leader
// election, a restart) the cache gives up and the model is called, rather than
// eating a judge's few seconds.
const opTimeout = 300 * time.Millisecond

// Get reads an answer.
func (c *KVCache) Get(ctx context.Context, t pipeline.Tier, key string) (pipeline.Response, bool) {
	kv := c.buckets[t]
	if kv == nil {
		return pipeline.Response{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	e, err := kv.Get(ctx, "answer."+key)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			c.log.Debug().Err(err).Msg("shared cache read failed")
		}
		return pipeline.Response{}, false
	}
	var a storedAnswer
	if err := json.Unmarshal(e.Value(), &a); err != nil {
		return pipeline.Response{}, false
	}
	return pipeline.Response{Content: a.Content, Reasoning: a.Reasoning, Provider: a.Provider, Model: a.Model, Usage: a.Usage}, true
}

// Put stores an answer for the tier's TTL.
func (c *KVCache) Put(ctx context.Context, t pipeline.Tier, key string, r pipeline.Response) {
	kv := c.buckets[t]
	if kv == nil {
		return
	}
	b, _ := json.Marshal(storedAnswer{r.Content, r.Reasoning, r.Provider, r.Model, r.Usage})
	ctx, cancel := context.WithTimeout(ctx, 5*opTimeout)
	defer cancel()
	if _, err := kv.Put(ctx, "answer."+key, b); err != nil {
		c.log.Debug().Err(err).Msg("shared cache write failed")
	}
}

// Lease claims the upstream call for key, create-if-absent with a TTL.
func (c *KVCache) Lease(ctx context.Context, t pipeline.Tier, key string) (bool, func()) {
	kv := c.buckets[t]
	if kv == nil {
		return true, func() {}
	}
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_, err := kv.Create(cctx, "lease."+key, c.owner, jetstream.KeyTTL(c.leaseTTL))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, func() {}
	}
	if err != nil {
		c.log.Debug().Err(err).Msg("shared cache claim failed; calling anyway")
		return true, func() {}
	}
	return true, func() {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = kv.Purge(pctx, "lease."+key)
	}
}

// maxAwait bounds how long a process waits on another's claim before it calls
// the model itself: the claim's holder may have died (its claim then stands
// until the lease TTL), and a judge with a 3 s timeout cannot wait for that.
const maxAwait = 2 * time.Second

// Await polls for another process's answer while its claim stands, for at
// most maxAwait and a quarter of the time ctx has left.
func (c *KVCache) Await(ctx context.Context, t pipeline.Tier, key string) (pipeline.Response, bool) {
	kv := c.buckets[t]
	if kv == nil {
		return pipeline.Response{}, false
	}
	limit := maxAwait
	if dl, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(dl)/4)
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	// Poll, backing off from 5 ms to 100 ms, until the answer or the end of the claim.
	r, err := backoff.Retry(ctx, func() (pipeline.Response, error) {
		if r, ok := c.Get(ctx, t, key); ok {
			return r, nil
		}
		lctx, cancel := context.WithTimeout(ctx, opTimeout)
		_, err := kv.Get(lctx, "lease."+key)
		cancel()
		if err != nil {
			// The claim is gone: answered (read once more) or failed.
			if r, ok := c.Get(ctx, t, key); ok {
				return r, nil
			}
			return pipeline.Response{}, backoff.Permanent(errClaimGone)
		}
		return pipeline.Response{}, errStillClaimed
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 5 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: 100 * time.Millisecond}),
		backoff.WithMaxElapsedTime(0))
	return r, err == nil
}

var (
	errClaimGone    = errors.New("the claim lapsed without an answer")
	errStillClaimed = errors.New("still claimed")
)
