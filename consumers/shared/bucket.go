package shared

import "github.com/nats-io/nats.go/jetstream"

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
