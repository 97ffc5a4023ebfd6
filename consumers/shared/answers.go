package shared

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers/setup"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/retry"
)

// Answers is the answer cache every worker process shares: one NATS KV bucket
// per tier, in memory (noesis_cache_fast, ..._reasoning, ..._deep), whose TTL
// is the tier's; while a call is in flight its key holds a claim with a short
// lease instead of the answer, so that identical requests in different
// processes make one upstream call. An entry that is neither a claim nor an
// answer with content (not JSON, or no content but spaces) is a miss, logged
// at warn level: it is never served, and the answer the caller then gets
// replaces it. An answer with no content is never stored. Safe for
// concurrent use.
type Answers struct {
	kept     // its buckets, which Keep sets up again when lost
	buckets  map[pipeline.Tier]jetstream.KeyValue
	leaseTTL time.Duration
	owner    []byte
	log      zerolog.Logger
}

// CacheBucket names a tier's bucket.
func CacheBucket(t pipeline.Tier) string { return "noesis_cache_" + string(t) }

// NewAnswers creates or updates the buckets for the tiers with a TTL above 0,
// placed as cfg says. leaseTTL bounds how long a claim outlives a process
// that died holding it. It returns ctx's error, or the bucket's that could
// not be set up. Close it when done: it waits for the answers being shared.
func NewAnswers(ctx context.Context, js jetstream.JetStream, ttl map[pipeline.Tier]time.Duration, cfg BucketConfig, leaseTTL time.Duration, log zerolog.Logger) (*Answers, error) {
	cfg = cfg.withDefaults()
	host, _ := os.Hostname()
	c := &Answers{buckets: map[pipeline.Tier]jetstream.KeyValue{}, leaseTTL: leaseTTL,
		owner: []byte(host + ":" + strconv.Itoa(os.Getpid())), log: log.With().Str("component", "kvcache").Logger()}
	for t, d := range ttl {
		if d <= 0 {
			continue
		}
		var kv jetstream.KeyValue
		kcfg := jetstream.KeyValueConfig{
			Bucket: CacheBucket(t), Description: fmt.Sprintf("noesis: %s tier answers, shared by every worker", t),
			TTL: d, LimitMarkerTTL: max(d, leaseTTL), Storage: jetstream.MemoryStorage, Replicas: cfg.Replicas, History: 1,
		}
		err := setup.Do(ctx, "cache bucket "+CacheBucket(t), func(ctx context.Context) (err error) {
			if err := dropFileBackedCache(ctx, js, CacheBucket(t)); err != nil {
				return err
			}
			kv, err = setup.Bucket(ctx, js, kcfg)
			return err
		})
		if err != nil {
			return nil, err
		}
		c.buckets[t] = kv
		c.keep(js, kcfg)
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
	// Structured: asked and answered in a schema (pipeline.Response.Structured).
	Structured bool `json:"structured,omitempty"`
}

// opTimeout bounds each shared-cache operation: when NATS is slow (a leader
// election, a restart) the cache gives up and the model is called, rather than
// eating a judge's few seconds.
const opTimeout = 300 * time.Millisecond

// A key's entry is the answer (JSON), or while a process calls the model for
// it, a claim: claimPrefix and the claiming process, with the lease's TTL. One
// key for both makes a miss one operation on the caller's path (a create
// that claims), where a read, then a claim on a key of its own, took two.
const claimPrefix = "claim "

// Claim implements router.Shared: create-if-absent of the key's claim; when
// the key exists, read it: an answer, or another process's claim.
func (c *Answers) Claim(ctx context.Context, t pipeline.Tier, key string) (pipeline.Response, bool, bool) {
	kv := c.buckets[t]
	if kv == nil {
		return pipeline.Response{}, false, true
	}
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_, err := kv.Create(cctx, "answer."+key, append([]byte(claimPrefix), c.owner...), jetstream.KeyTTL(c.leaseTTL))
	if err == nil {
		return pipeline.Response{}, false, true
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		c.log.Debug().Err(err).Msg("shared cache claim failed; calling anyway")
		return pipeline.Response{}, false, true
	}
	r, answered, err := c.get(cctx, t, kv, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return pipeline.Response{}, false, false // the claim lapsed since: Await sees it gone, and the caller calls
	case err != nil:
		return pipeline.Response{}, false, true // unreadable: call, as with no shared level; the answer replaces the entry
	}
	return r, answered, false
}

// get reads key's entry: the answer, or a claim (answered false). An entry
// that is neither is errBadAnswer, logged.
func (c *Answers) get(ctx context.Context, t pipeline.Tier, kv jetstream.KeyValue, key string) (pipeline.Response, bool, error) {
	e, err := kv.Get(ctx, "answer."+key)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			c.log.Debug().Err(err).Msg("shared cache read failed")
		}
		return pipeline.Response{}, false, err
	}
	if bytes.HasPrefix(e.Value(), []byte(claimPrefix)) {
		return pipeline.Response{}, false, nil
	}
	var a storedAnswer
	if err := json.Unmarshal(e.Value(), &a); err != nil || strings.TrimSpace(a.Content) == "" {
		c.log.Warn().AnErr("parse", err).Str("bucket", CacheBucket(t)).Str("key", "answer."+key).Int("bytes", len(e.Value())).
			Msg("shared cache entry is not an answer with content: a miss, never served")
		return pipeline.Response{}, false, errBadAnswer
	}
	return pipeline.Response{Content: a.Content, Reasoning: a.Reasoning, Provider: a.Provider, Model: a.Model, Usage: a.Usage, Structured: a.Structured}, true, nil
}

// Settle implements router.Shared: the answer replaces the claim, for the
// tier's TTL; a failed call's claim is removed, so waiting processes call,
// and so is the claim of an answer with no content, which is never stored.
func (c *Answers) Settle(ctx context.Context, t pipeline.Tier, key string, r pipeline.Response, callErr error) {
	kv := c.buckets[t]
	if kv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*opTimeout)
	defer cancel()
	if callErr != nil || strings.TrimSpace(r.Content) == "" {
		if e, err := kv.Get(ctx, "answer."+key); err == nil && bytes.Equal(e.Value(), append([]byte(claimPrefix), c.owner...)) {
			_ = kv.Purge(ctx, "answer."+key, jetstream.LastRevision(e.Revision()))
		}
		return
	}
	b, _ := json.Marshal(storedAnswer{r.Content, r.Reasoning, r.Provider, r.Model, r.Usage, r.Structured})
	if _, err := kv.Put(ctx, "answer."+key, b); err != nil {
		c.log.Debug().Err(err).Msg("shared cache write failed")
	}
}

// maxAwait bounds how long a process waits on another's claim before it calls
// the model itself: the claim's holder may have died (its claim then stands
// until the lease TTL), and a judge with a 3 s timeout cannot wait for that.
const maxAwait = 2 * time.Second

// Await polls for another process's answer while its claim stands, for at
// most maxAwait and a quarter of the time ctx has left.
func (c *Answers) Await(ctx context.Context, t pipeline.Tier, key string) (pipeline.Response, bool) {
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
	// Poll until the answer or the end of the claim.
	r, err := retry.Do(ctx, awaitPolicy, func() (pipeline.Response, error) {
		gctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		r, answered, err := c.get(gctx, t, kv, key)
		switch {
		case answered:
			return r, nil
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return pipeline.Response{}, retry.Permanent(errClaimGone) // the claim lapsed or failed
		case errors.Is(err, errBadAnswer):
			return pipeline.Response{}, retry.Permanent(err) // no answer will come: call now
		}
		return pipeline.Response{}, errStillClaimed
	})
	return r, err == nil
}

// awaitPolicy polls for another process's answer, backing off from 5 ms to
// 100 ms.
var awaitPolicy = retry.Exponential(5*time.Millisecond, 100*time.Millisecond)
