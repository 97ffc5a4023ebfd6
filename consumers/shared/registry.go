package shared

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers/setup"
)

// WorkersBucket is the KV bucket where every worker process announces itself.
const WorkersBucket = "noesis_workers"

// WorkerInfo is what a worker process says of itself.
type WorkerInfo struct {
	ID       string            `json:"id"` // host:pid
	Version  string            `json:"version"`
	Tiers    []string          `json:"tiers"`
	Started  time.Time         `json:"started"`
	Seen     time.Time         `json:"seen"`
	Breakers map[string]string `json:"breakers,omitempty"` // judge -> closed | open | half-open
	// TargetBreakers are the model targets' breakers: provider:model -> state.
	TargetBreakers map[string]string `json:"target_breakers,omitempty"`
	// Limits are the pools' concurrency limits, by stage.
	Limits map[string]LimitInfo `json:"limits,omitempty"`
	// Paced are the model targets paced to a quota learned from their 429s:
	// provider:model -> calls per second.
	Paced map[string]float64 `json:"paced,omitempty"`
}

// LimitInfo is a pool's concurrency limit as a worker announces it.
type LimitInfo struct {
	Limit    int  `json:"limit"`
	InFlight int  `json:"in_flight"`
	Adaptive bool `json:"adaptive"`
}

// Registry keeps worker announcements in a KV bucket whose entries expire
// after three missed announcements. Safe for concurrent use.
type Registry struct {
	kept  // its bucket, which Keep sets up again when lost
	kv    jetstream.KeyValue
	every time.Duration
}

// NewRegistry creates or updates the bucket, placed as cfg says; workers
// announce every `every`. It returns ctx's error, or the bucket's that could
// not be set up.
func NewRegistry(ctx context.Context, js jetstream.JetStream, cfg BucketConfig, every time.Duration) (*Registry, error) {
	cfg = cfg.withDefaults()
	var kv jetstream.KeyValue
	kcfg := jetstream.KeyValueConfig{Bucket: WorkersBucket, Description: "noesis: live worker processes",
		TTL: 3 * every, Storage: jetstream.MemoryStorage, Replicas: cfg.Replicas, History: 1}
	err := setup.Do(ctx, "bucket "+WorkersBucket, func(ctx context.Context) (err error) {
		kv, err = setup.Bucket(ctx, js, kcfg)
		return err
	})
	if err != nil {
		return nil, err
	}
	r := &Registry{kv: kv, every: every}
	r.keep(js, kcfg)
	return r, nil
}

// Announce puts info now and every interval until ctx ends, then removes it
// and returns: it blocks, and its caller owns it (runs it in a goroutine it
// waits for). info is called for each announcement, so it can report live
// state.
func (r *Registry) Announce(ctx context.Context, info func() WorkerInfo) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		wi := info()
		wi.Seen = time.Now().UTC()
		if b, err := json.Marshal(wi); err == nil {
			_, _ = r.kv.Put(ctx, key(wi.ID), b)
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = r.kv.Delete(dctx, key(wi.ID))
			cancel()
			return
		case <-t.C:
		}
	}
}

func key(id string) string {
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// ListWorkers reads the live workers' announcements, leaving out the entries
// that are not one (see ReadWorkers).
func ListWorkers(ctx context.Context, js jetstream.JetStream) ([]WorkerInfo, error) {
	workers, _, err := ReadWorkers(ctx, js)
	return workers, err
}

// ReadWorkers reads the live workers' announcements. An entry that is not
// one (not a WorkerInfo in JSON, with no id or announcement time, or under
// a key other than its id's) is no worker: it is left out, and skipped says why, naming
// its key, with an error matching ErrBadWorker (or the error that kept it
// from being read). err is for the bucket as a whole. Unknown fields are
// allowed: a newer worker's announcement still reads.
func ReadWorkers(ctx context.Context, js jetstream.JetStream) (workers []WorkerInfo, skipped []error, err error) {
	kv, err := js.KeyValue(ctx, WorkersBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("workers: %w", err)
	}
	keys, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("workers: %w", err)
	}
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // gone since the listing
		}
		if err != nil {
			skipped = append(skipped, fmt.Errorf("workers: %s: %w", k, err))
			continue
		}
		wi, err := readWorker(k, e.Value())
		if err != nil {
			skipped = append(skipped, fmt.Errorf("workers: %s: %w", k, err))
			continue
		}
		workers = append(workers, wi)
	}
	return workers, skipped, nil
}

// readWorker reads the announcement stored under k.
func readWorker(k string, value []byte) (WorkerInfo, error) {
	var wi WorkerInfo
	if err := json.Unmarshal(value, &wi); err != nil {
		return wi, fmt.Errorf("%w: %w", ErrBadWorker, err)
	}
	switch {
	case wi.ID == "":
		return wi, fmt.Errorf("%w: no id", ErrBadWorker)
	case key(wi.ID) != k:
		return wi, fmt.Errorf("%w: id %q belongs under key %s", ErrBadWorker, wi.ID, key(wi.ID))
	case wi.Seen.IsZero():
		return wi, fmt.Errorf("%w: no announcement time", ErrBadWorker)
	}
	return wi, nil
}
