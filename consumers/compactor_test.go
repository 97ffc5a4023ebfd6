package consumers_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
)

// An agent's quota counts the thoughts that wait: once every stage has
// acknowledged its thoughts the compactor purges them and the agent may
// publish again; a thought some stage has not acknowledged is never purged.
func TestCompactorMakesRoomOnlyFromAcknowledgedThoughts(t *testing.T) {
	cfg := consumers.StreamsConfig{MaxThoughtsPerAgent: 10}
	ctx, js := withStreamsConfig(t, cfg)
	publish := func(id string) error {
		_, err := js.Publish(ctx, consumers.ThoughtSubject("busy"), thoughtJSON(t, id, "busy", "x", pipeline.StageNarrative))
		return consumers.PublishError(consumers.StreamThoughts, err)
	}
	for i := 0; i < 10; i++ {
		if err := publish(fmt.Sprint("b-", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := publish("b-10"); !errors.Is(err, consumers.ErrStreamFull) {
		t.Fatalf("the 11th thought: %v", err)
	}
	compactor := consumers.NewCompactor(js, cfg, zerolog.Nop())

	// A tribunal consumer that has acknowledged nothing: nothing may go.
	tribunal, err := consumers.NewPool(js, consumers.PoolConfig{Stage: pipeline.StageTribunal}, echo(pipeline.StageTribunal), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tribunal.EnsureConsumer(ctx); err != nil {
		t.Fatal(err)
	}
	narr := runPool(t, js, consumers.PoolConfig{Stage: pipeline.StageNarrative}, echo(pipeline.StageNarrative))
	natstest.Eventually(t, 10*time.Second, func() bool { return narr.Stats().Published == 10 },
		func() string { return fmt.Sprintf("narrative pool %+v", narr.Stats()) })
	if n, err := compactor.Compact(ctx); err != nil || n != 0 {
		t.Fatalf("compacted %d (%v) while the tribunal had acknowledged nothing", n, err)
	}
	// The tribunal skips them all (they ask only for the narrative): now every
	// stage has acknowledged them, and they go.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tribunal.Run(runCtx) }()
	defer func() { stop(); <-done }()
	natstest.Eventually(t, 10*time.Second, func() bool { return tribunal.Stats().Skipped == 10 },
		func() string { return fmt.Sprintf("tribunal pool %+v", tribunal.Stats()) })
	var purged uint64
	natstest.Eventually(t, 10*time.Second, func() bool {
		n, err := compactor.Compact(ctx)
		purged += n
		return err == nil && purged == 10
	}, func() string { return fmt.Sprintf("%d purged", purged) })
	if err := publish("b-11"); err != nil {
		t.Fatalf("after compaction the agent is still refused: %v", err)
	}
}
