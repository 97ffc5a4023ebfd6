package main

import (
	"context"
	"io"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/noesis-dev/noesis/cmd/internal/bench"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// A shadow comparison replays stored thoughts through a candidate chain:
// both sides judge every thought, and nothing is published.
func TestShadowComparesChainsWithoutPublishing(t *testing.T) {
	r := newRig(t, sim.Config{Shape: "tagged-lines"})
	if err := consumers.EnsureStreams(context.Background(), r.js, r.cfg.Streams()); err != nil {
		t.Fatal(err)
	}
	var published atomic.Int64
	sub, err := r.nc.Subscribe("noesis.verdicts.>", func(*nats.Msg) { published.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	corpus, err := bench.LabelledCorpus()
	if err != nil {
		t.Fatal(err)
	}
	for i, lt := range corpus {
		th := thought(i, lt.Task)
		th.Action, th.Stages = lt.Action, []pipeline.Stage{pipeline.StageTribunal}
		publishThought(t, r.js, th)
	}
	res, err := bench.Shadow(context.Background(), r.cfg, r.js, "sim:deepseek-ai/DeepSeek-V3-0324-fast", 5, 0, 1000, 8, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := bench.WriteShadowFigures(io.Discard, res); err != nil {
		t.Fatal(err)
	}
	n := len(corpus) - 4 // from sequence 5
	if res.Thoughts != n || res.Baseline.Verdicts != n || res.Candidate.Verdicts != n {
		t.Fatalf("%d thoughts, %d and %d verdicts; want %d", res.Thoughts, res.Baseline.Verdicts, res.Candidate.Verdicts, n)
	}
	if res.Baseline.Chain == res.Candidate.Chain || r.sim.Stats().PerModel["deepseek-ai/DeepSeek-V3-0324-fast"] != int64(3*n) {
		t.Errorf("chains %s / %s; candidate model asked %d times, want %d", res.Baseline.Chain, res.Candidate.Chain, r.sim.Stats().PerModel["deepseek-ai/DeepSeek-V3-0324-fast"], 3*n)
	}
	// The simulated judges mean the same whatever the model: full agreement.
	if res.Agree != n || res.Kappa != 1 {
		t.Errorf("agreement %d of %d, kappa %.3f; confusion %v", res.Agree, n, res.Kappa, res.Confusion)
	}
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if p := published.Load(); p != 0 {
		t.Errorf("%d shadow verdicts published", p)
	}
}
