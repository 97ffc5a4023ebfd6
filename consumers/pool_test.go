package consumers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
)

// A thought that makes the handler panic is dead-lettered with the panic and
// its stack; the worker lives and handles the thoughts after it.
func TestAPanicDeadLettersItsThoughtAndTheWorkerLives(t *testing.T) {
	ctx, js := withStreams(t)
	handler := func(_ context.Context, th pipeline.Thought) (pipeline.Output, error) {
		if strings.Contains(th.Content.UserInput, "boom") {
			panic("a bug in the handler for " + th.EventID)
		}
		return &pipeline.Narrative{Meta: pipeline.Meta{EventID: th.EventID, AgentID: th.AgentID, Stage: pipeline.StageNarrative}}, nil
	}
	pool, err := consumers.NewPool(js, consumers.PoolConfig{Stage: pipeline.StageNarrative}, handler, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	runCtx, stop := context.WithCancel(ctx)
	go func() { defer close(done); _ = pool.Run(runCtx) }()
	for i, text := range []string{"fine", "boom", "fine again", "boom", "still fine"} {
		body, _ := json.Marshal(pipeline.Thought{EventID: fmt.Sprintf("p-%d", i), AgentID: "a1", Content: pipeline.Content{UserInput: text}})
		if _, err := js.Publish(ctx, consumers.ThoughtSubject("a1"), body); err != nil {
			t.Fatal(err)
		}
	}
	natstest.Eventually(t, 15*time.Second, func() bool { st := pool.Stats(); return st.Published == 3 && st.DeadLettered == 2 },
		func() string { return fmt.Sprintf("stats %+v: want 3 published and 2 dead-lettered", pool.Stats()) })
	letters, err := consumers.ListLetters(ctx, js, pipeline.StageNarrative)
	if err != nil || len(letters) != 2 {
		t.Fatalf("%d letters, %v", len(letters), err)
	}
	for _, l := range letters {
		tr := l.Header.Get(consumers.HeaderDLQTranscript)
		if !strings.Contains(l.Reason, "handler panicked") || !strings.Contains(l.Reason, "a bug in the handler") || !strings.Contains(tr, "pool_test.go") || l.Attempts != 1 {
			t.Errorf("letter: reason %q, %d attempts, transcript %.120s", l.Reason, l.Attempts, tr)
		}
	}
	stop()
	<-done
}

// A pool stopped before it set its consumer up stops cleanly: a shutdown
// that comes during start is not a failure.
func TestAPoolStoppedBeforeItStartsIsNoFailure(t *testing.T) {
	_, js := withStreams(t)
	pool, err := consumers.NewPool(js, consumers.PoolConfig{Stage: pipeline.StageNarrative},
		func(context.Context, pipeline.Thought) (pipeline.Output, error) { return nil, nil }, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := pool.Run(ctx); err != nil {
		t.Fatalf("Run after its context ended: %v", err)
	}
}
