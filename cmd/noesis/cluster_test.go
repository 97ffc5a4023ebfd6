package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/cmd/internal/service"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// Three nodes, streams at R3, three workers each on its own node ("machine")
// sharing the durable consumers: every thought answered once, the load spread.
func TestThreeNodeCluster(t *testing.T) {
	t.Parallel()
	nodes := natstest.RunCluster(t, 3)
	_, simURL := simtest.Start(t, sim.Config{LatencyScale: 0.005})
	var workers []*service.Service
	for _, n := range nodes {
		cfg := testConfig(t, n, simURL)
		cfg.NATSURL = n.ClientURL()
		cfg.StreamReplicas = 3
		cfg.DataDir = t.TempDir()
		cfg.Tier.Fast.Concurrency, cfg.Tier.Reasoning.Concurrency = 4, 4
		workers = append(workers, runService(t, cfg))
	}
	nc, err := nats.Connect(natstest.ClusterURL(nodes))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	got := collect(t, nc)
	var events []string
	for i := 0; i < 150; i++ {
		th := thought(i, fmt.Sprintf("cluster thought %d", i))
		th.Content.Depth = 1
		publishThought(t, js, th)
		events = append(events, th.EventID)
	}
	got.waitFor(t, 60*time.Second, map[string]int{"narratives": 150, "verdicts": 150})
	got.settle(t, js)
	got.exactlyOnce(t, "narratives", events)
	got.exactlyOnce(t, "verdicts", events)
	s, err := js.Stream(context.Background(), consumers.StreamThoughts)
	if err != nil {
		t.Fatal(err)
	}
	if info := s.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream not at R3: %+v", info.Cluster)
	}
	var split []uint64
	for _, w := range workers {
		n := w.Pool(pipeline.StageNarrative).Stats().Published + w.Pool(pipeline.StageTribunal).Stats().Published
		if n == 0 {
			t.Errorf("a worker did no work: %v", split)
		}
		split = append(split, n)
	}
	t.Logf("outputs per worker: %v", split)
}
