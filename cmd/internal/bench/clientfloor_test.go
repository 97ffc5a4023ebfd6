package bench

import (
	"context"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// TestCachedClientFloorKeepsItsAnswers: the client floor with the answer
// cache keeps each answer it gets from the simulator (over HTTP) in the
// tier's cache, so the same call again is answered from there; without the
// cache it keeps nothing.
func TestCachedClientFloorKeepsItsAnswers(t *testing.T) {
	cfg := config.Defaults()
	cfg.SimLatencyScale = 0
	srv, err := sim.New(cfg.Sim())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer func() { cancel(); srv.Wait() }()
	url, err := srv.Start(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	th := pipeline.Thought{EventID: "e1", AgentID: "a", Content: pipeline.Content{UserInput: "compact /archive now", Depth: 2}}

	calls, err := newFloorCalls(cfg, url, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer calls.close()
	judge := calls.tribunal.Judges()[0]
	for range 2 {
		if err := calls.call(ctx, pipeline.TierReasoning, calls.judges[0], calls.tribunal.Messages(judge, &th), calls.temp, calls.maxTokens, judgeSchema); err != nil {
			t.Fatal(err)
		}
	}
	if s := calls.cache.Stats(); s.Misses != 1 || s.Hits != 1 {
		t.Fatalf("the same judge's call twice: %d misses, %d hits; want the answer kept after the first and read for the second", s.Misses, s.Hits)
	}
	// Another judge's prompt is another request: its own entry.
	other := calls.tribunal.Judges()[1]
	if err := calls.call(ctx, pipeline.TierReasoning, calls.judges[1], calls.tribunal.Messages(other, &th), calls.temp, calls.maxTokens, judgeSchema); err != nil {
		t.Fatal(err)
	}
	if s := calls.cache.Stats(); s.Misses != 2 {
		t.Fatalf("another judge's call: %d misses, want 2", s.Misses)
	}

	plain, err := newFloorCalls(cfg, url, true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.close()
	if plain.cache != nil {
		t.Fatal("the client floor (go-openai alone) has an answer cache")
	}
}
