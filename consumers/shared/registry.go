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
		_ = r.Put(ctx, wi)
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

// WatchOthers tells alone, until ctx ends, whether the worker self is the
// only live one: alone(true) when a whole listing of the bucket finds no
// other worker's announcement, alone(false) as soon as another worker
// announces itself (a watch on the bucket sees its first announcement
// within moments), and alone(false) whenever the bucket cannot be listed or
// watched, so that a worker that cannot tell shares. It lists the bucket at
// once and then every interval: a worker that stops is seen gone at the
// first listing after it removed its entry, or after the entry expired
// (three intervals). It blocks, and its caller owns it; it says
// alone(false) before it returns.
func (r *Registry) WatchOthers(ctx context.Context, self string, alone func(bool)) {
	me := key(self)
	defer alone(false)
	t := time.NewTicker(r.every)
	defer t.Stop()
	var w jetstream.KeyWatcher
	defer func() { stopWatch(w) }()
	for {
		// A new watch each listing: a watch follows the bucket's stream by
		// sequence, and one the keeper made again (a server restart loses
		// it) starts over at 1, unseen by a watch made before. The watch
		// first, so that no announcement falls between the listing and it.
		stopWatch(w)
		w, _ = r.kv.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.MetaOnly())
		others, err := r.others(ctx, me)
		alone(w != nil && err == nil && others == 0)
		if !awaitListing(ctx, t.C, &w, me, alone) {
			return
		}
	}
}

// awaitListing waits for the next listing, at the tick. On the way it
// tells alone(false) at each announcement of a worker other than me
// (removals wait for the listing), and when the watch *w ends (a closed
// connection ends it: it sets *w to nil), since a join would then go
// unseen until the listing. It reports false when ctx ended.
func awaitListing(ctx context.Context, tick <-chan time.Time, w *jetstream.KeyWatcher, me string, alone func(bool)) bool {
	var updates <-chan jetstream.KeyValueEntry
	if *w != nil {
		updates = (*w).Updates()
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick:
			return true
		case e, ok := <-updates:
			if !ok {
				*w, updates = nil, nil
				alone(false)
				continue
			}
			if e != nil && e.Key() != me && e.Operation() == jetstream.KeyValuePut {
				alone(false)
			}
		}
	}
}

// others counts the announcements in the bucket under keys other than me.
func (r *Registry) others(ctx context.Context, me string) (int, error) {
	lctx, cancel := context.WithTimeout(ctx, min(r.every, 10*time.Second))
	defer cancel()
	keys, err := listKeys(lctx, r.kv)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		if k != me {
			n++
		}
	}
	return n, nil
}

// Put announces wi once, now: a worker about to start its pools does, so
// that the others see it before it takes any thought (see WatchOthers).
func (r *Registry) Put(ctx context.Context, wi WorkerInfo) error {
	wi.Seen = time.Now().UTC()
	b, err := json.Marshal(wi)
	if err != nil {
		return err
	}
	_, err = r.kv.Put(ctx, key(wi.ID), b)
	return err
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
