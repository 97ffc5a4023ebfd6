package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers/shared"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// The buckets a worker keeps in memory (its registry, the shared answer
// cache) are lost whenever their server restarts; the worker sets them up
// again, and shows in noesis status again, without a restart of its own.
// Here they are deleted, which leaves the server as a restart would.
func TestLostBucketsAreSetUpAgain(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Config{})
	runService(t, r.cfg)
	ctx := context.Background()
	live := func() bool { ws, _ := shared.ListWorkers(ctx, r.js); return len(ws) == 1 }
	eventually(t, 10*time.Second, live, func() string { return "the worker did not announce itself" })
	buckets := []string{shared.WorkersBucket, shared.CacheBucket(pipeline.TierFast), shared.CacheBucket(pipeline.TierReasoning)}
	for _, b := range buckets {
		if err := r.js.DeleteKeyValue(ctx, b); err != nil {
			t.Fatalf("delete %s: %v", b, err)
		}
	}
	if live() {
		t.Fatal("the worker still shows with its registry's bucket deleted")
	}
	eventually(t, 40*time.Second, func() bool {
		for _, b := range buckets {
			if _, err := r.js.KeyValue(ctx, b); errors.Is(err, jetstream.ErrBucketNotFound) {
				return false
			}
		}
		return live()
	}, func() string { return "the buckets or the worker's announcement did not come back in 40 s" })
}
