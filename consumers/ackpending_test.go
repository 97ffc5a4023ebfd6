package consumers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/shared"
	"github.com/noesis-dev/noesis/pipeline"
)

// An adaptive pool's consumer MaxAckPending follows the live workers'
// limits: raised for two workers at their ceiling, kept when another worker
// starts, left alone when configured.
func TestMaxAckPendingFollowsTheLiveLimits(t *testing.T) {
	js := natstest.JetStream(t)
	ctx := context.Background()
	if err := EnsureStreams(ctx, js, StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	h := func(context.Context, pipeline.Thought) (pipeline.Output, error) { return nil, nil }
	newPool := func(cfg PoolConfig) *Pool {
		p, err := NewPool(js, cfg, h, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.EnsureConsumer(ctx); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pool := newPool(PoolConfig{Stage: pipeline.StageNarrative, MaxConcurrency: 8})
	maxAckPending := func() int {
		c, err := js.Consumer(ctx, StreamThoughts, string(pipeline.StageNarrative))
		if err != nil {
			t.Fatal(err)
		}
		return c.CachedInfo().Config.MaxAckPending
	}
	if got := maxAckPending(); got != 8 {
		t.Fatalf("max ack pending %d at start, want MaxConcurrency 8", got)
	}

	reg, err := shared.NewRegistry(ctx, js, shared.BucketConfig{}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	defer stop()
	for _, id := range []string{"a", "b"} {
		go reg.Announce(actx, func() shared.WorkerInfo {
			return shared.WorkerInfo{ID: id, Limits: map[string]shared.LimitInfo{"narrative": {Limit: 8, Adaptive: true}}}
		})
	}
	var ws []shared.WorkerInfo
	natstest.Eventually(t, 10*time.Second, func() bool { ws, _ = shared.ListWorkers(ctx, js); return len(ws) >= 2 },
		func() string { return fmt.Sprintf("%d workers announced", len(ws)) })
	// Each: room to double its limit (capped at 8) and its pull buffer (8).
	if got, err := pool.followAckPending(ctx); err != nil || got != 32 || maxAckPending() != 32 {
		t.Fatalf("followed to %d (consumer %d), %v; want 2 x (8 + 8)", got, maxAckPending(), err)
	}
	newPool(PoolConfig{Stage: pipeline.StageNarrative, MaxConcurrency: 8}) // a worker starting
	if got := maxAckPending(); got != 32 {
		t.Errorf("a starting worker set max ack pending to %d, want 32 kept", got)
	}
	if fixed := newPool(PoolConfig{Stage: pipeline.StageNarrative, MaxConcurrency: 8, MaxAckPending: 20}); fixed.followsAckPending() {
		t.Error("a configured MaxAckPending follows the limits")
	}
	if got := maxAckPending(); got != 20 {
		t.Errorf("configured 20, consumer has %d", got)
	}

	// Raised at once, lowered only past twice what is wanted.
	if w := pool.wantAckPending(nil); w != 8 {
		t.Errorf("no workers: want %d, want MaxConcurrency 8", w)
	}
	one := []shared.WorkerInfo{{Limits: map[string]shared.LimitInfo{"narrative": {Limit: 4, Adaptive: true}}}}
	if w := pool.wantAckPending(one); w != 16 {
		t.Errorf("one worker at 4: want %d, want 2 x 4 + 8", w)
	}
}
