package shared

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers/setup"
)

// BucketConfig places the shared buckets: their replicas and storage, as
// the streams' (consumers.StreamsConfig.Buckets). The answer cache and the
// registry are kept in memory whatever Storage says.
type BucketConfig struct {
	// Replicas per bucket: 1 on one server (the default), 3 on a three-node
	// cluster.
	Replicas int
	// Storage is file (the default) or memory.
	Storage jetstream.StorageType
}

func (c BucketConfig) withDefaults() BucketConfig {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	return c
}

// kept is the buckets a component set up, with their configs, so that one
// lost can be set up again (Keep).
type kept struct {
	js   jetstream.JetStream
	cfgs []jetstream.KeyValueConfig
}

// keep remembers cfg, a bucket set up with it.
func (k *kept) keep(js jetstream.JetStream, cfg jetstream.KeyValueConfig) {
	k.js = js
	k.cfgs = append(k.cfgs, cfg)
}

// Keep sets up again each of the buckets that is missing, as it was set up
// first, and returns their streams' names (KV_<bucket>). The in-memory
// buckets (the worker registry, the shared answer cache) are lost whenever
// their server restarts, and the handles the component holds work again
// once their buckets are back. A consumers.Guard calls it with its checks.
func (k *kept) Keep(ctx context.Context) (missing []string, err error) {
	var errs []error
	for _, cfg := range k.cfgs {
		_, err := k.js.KeyValue(ctx, cfg.Bucket)
		if !errors.Is(err, jetstream.ErrBucketNotFound) {
			if err != nil {
				errs = append(errs, fmt.Errorf("bucket %s: %w", cfg.Bucket, err))
			}
			continue
		}
		missing = append(missing, "KV_"+cfg.Bucket)
		if _, err := setup.Bucket(ctx, k.js, cfg); err != nil {
			errs = append(errs, fmt.Errorf("bucket %s not set up again: %w", cfg.Bucket, err))
		}
	}
	return missing, errors.Join(errs...)
}

// listKeys lists kv's keys, and returns ctx's error when ctx ends before
// the listing is whole: nats.go's Keys and ListKeys return what came by
// then as if it were all, and ListKeys's goroutine blocks for good when its
// reader stops early. The watch is stopped and drained on every return.
func listKeys(ctx context.Context, kv jetstream.KeyValue) ([]string, error) {
	w, err := kv.WatchAll(ctx, jetstream.MetaOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer stopWatch(w)
	var keys []string
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("bucket %s: the listing ended before its last key", kv.Bucket())
			}
			if e == nil { // every key there was when the watch began
				return keys, nil
			}
			keys = append(keys, e.Key())
		}
	}
}

// stopWatch stops w, when there is one, and reads what it still holds
// until its subscription has closed (the watch's goroutine may be blocked
// handing over an update), 5 s at most.
func stopWatch(w jetstream.KeyWatcher) {
	if w == nil {
		return
	}
	_ = w.Stop()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		case <-deadline.C:
			return
		}
	}
}
