package consumers_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
)

// Health can be read while Check adds the keepers' missing buckets to the
// streams found missing: Check's own Health shares no array with what
// Health's readers (/readyz, the registry's announcement) hold (a race
// before, under -race).
func TestGuardHealthDoesNotRaceWithCheck(t *testing.T) {
	ctx, js := withStreams(t)
	// Two streams lost and the advisories never made (3 names, cap 4): the keeper's bucket goes in the shared slot.
	for _, name := range []string{"NOESIS_DLQ", "NOESIS_DLQ_KEYS"} {
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	g := consumers.NewGuard(js, consumers.StreamsConfig{}, zerolog.Nop())
	g.Keep(func(context.Context) ([]string, error) { return []string{"KV_lost"}, nil })
	done := make(chan consumers.Health)
	go func() { done <- g.Check(context.Background()) }()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(g.Health().MissingStreams, "KV_lost") {
		if time.Now().After(deadline) {
			t.Fatal("the lost bucket never showed in Health")
		}
		runtime.Gosched()
	}
	h := <-done
	t.Logf("missing %d (cap %d): %v", len(h.MissingStreams), cap(h.MissingStreams), h.MissingStreams)
}

// A thought held for its agent's own quota gives its slot back while it
// waits (hold.go) and takes one again after its Retry-After, even with one
// slot and no other thought coming: the dispatcher waits for a thought
// before it takes a slot (it took the last slot first, and held it idle,
// so the held thought waited until another thought came).
func TestAQuotaHeldThoughtIsTriedAgainWithOneSlot(t *testing.T) {
	ctx, js := withStreams(t)
	var tries atomic.Int32
	h := func(_ context.Context, th pipeline.Thought) (pipeline.Output, error) {
		if tries.Add(1) == 1 {
			return nil, &pipeline.RetryAfterError{Err: fmt.Errorf("%w: %w: %w: agent over its quota", pipeline.ErrTransient, pipeline.ErrRateLimited, pipeline.ErrQuota), After: 20 * time.Millisecond}
		}
		return &pipeline.Narrative{Meta: pipeline.Meta{EventID: th.EventID, AgentID: th.AgentID, Stage: pipeline.StageNarrative}, Narrative: "ok"}, nil
	}
	runPool(t, js, consumers.PoolConfig{Stage: pipeline.StageNarrative, Concurrency: 1}, h)
	if _, err := js.Publish(ctx, consumers.ThoughtSubject("alice"), thoughtJSON(t, "e1", "alice", "hi", pipeline.StageNarrative)); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, func() bool { return tries.Load() >= 2 },
		func() string {
			return fmt.Sprintf("held for a 20 ms quota wait, not tried again (%d tries)", tries.Load())
		})
}
