package shared

import (
	"context"
	"errors"
	"fmt"

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
