package bench

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/pipeline"
)

// A burst's ideal is the slower model's queue: 1,000 thoughts make 3,000
// judge calls of 1.93 s on R1, 64 at a time, against 1,000 narratives of
// 1.135 s on Llama.
func TestIdealDrainIsTheSlowerModelsQueue(t *testing.T) {
	cfg := config.Config{NebiusModel: "meta-llama/Llama-3.3-70B-Instruct-fast", NebiusModelReasoning: "deepseek-ai/DeepSeek-R1-0528-fast"}
	if got, want := idealDrain(cfg, 1000, 64), 3000*1930*time.Millisecond/64; got != want {
		t.Fatalf("ideal drain %v, want %v", got, want)
	}
	r := &PipelineFigures{Mode: "seed", Thoughts: 1000, Seconds: 100, IdealDrainS: 90, Both: StageFigures{Received: 1000},
		ClientFloor: &FloorFigures{Seconds: 95, Both: StageFigures{Received: 1000}}}
	var burst []Goal
	for _, g := range goals(r) {
		if g.Unit == "s" {
			burst = append(burst, g)
		}
	}
	if len(burst) != 2 || burst[0].Want != 112.5 || !burst[0].Met || burst[0].AtFloor != 90 || burst[1].AtFloor != 95 {
		t.Fatalf("burst goals %+v, want 100 s met against 1.25 x 90 s, beside the ideal and the client floor", burst)
	}
	r.Both.Received = 761 // a burst not drained within the wait is not met, however soon its last output came
	for _, g := range goals(r) {
		if g.Unit == "s" && g.Met {
			t.Fatalf("%+v met with 761 of 1,000 thoughts drained", g)
		}
	}
}

// Issue 21's goals are ratios to a floor measured in the same run.
func TestRatioGoalsFollowTheirFloor(t *testing.T) {
	zero := goals(&PipelineFigures{Mode: "zero", Throughput: 750, ClientFloor: &FloorFigures{Throughput: 1000}})
	cache := goals(&PipelineFigures{Mode: "cache", Throughput: 7000, Floor: &FloorFigures{Throughput: 10000}})
	last := func(gs []Goal) Goal { return gs[len(gs)-1] }
	if g := last(zero); g.Want != 700 || !g.Met {
		t.Fatalf("zero: %+v, want 750 met against 70 %% of 1,000", g)
	}
	if g := last(cache); g.Want != 8000 || g.Met {
		t.Fatalf("cache: %+v, want 7,000 not met against 80 %% of 10,000", g)
	}
	for _, c := range []struct {
		rss float64
		met bool
	}{{500, true}, {525, true}, {526, false}} {
		g := last(goals(&PipelineFigures{Mode: "seed", PeakRSSMB: c.rss, ClientFloor: &FloorFigures{PeakRSSMB: 420}}))
		if g.Want != 525 || g.Met != c.met || g.AtFloor != 420 || g.Unit != "MB" {
			t.Fatalf("seed, peak RSS %g MB: %+v, want met %v against 1.25 x the client floor's 420 MB", c.rss, g, c.met)
		}
	}
}

// Keeping up leaves the last output's latency: 99 % of the offered rate.
func TestKeepingUpLeavesTheLastOutputsLatency(t *testing.T) {
	for _, c := range []struct {
		throughput float64
		met        bool
	}{{999.9, true}, {990, true}, {989, false}, {874, false}} {
		for _, g := range goals(&PipelineFigures{Mode: "zero", OfferedRate: 1000, Throughput: c.throughput}) {
			if g.Unit == "thoughts/s" && g.Met != c.met {
				t.Fatalf("%g thoughts/s offered 1,000/s: met %v, want %v", c.throughput, g.Met, c.met)
			}
		}
	}
}

// The longest pause is the longest time between two outputs of any stage,
// the warm-up's left out.
func TestLongestPauseIsBetweenAnyTwoOutputs(t *testing.T) {
	a := newArrivals(4)
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	a.from = 1 // thought 0 is the warm-up: its outputs do not count
	a.got["narrative"] = []time.Time{at(-5000), at(10), at(20), at(1500)}
	a.got["tribunal"] = []time.Time{at(-4000), at(15), {}, at(30)} // thought 2's verdict never came
	if got, want := a.longestPause(), 1470*time.Millisecond; got != want {
		t.Fatalf("longest pause %v, want %v (from 30 ms to 1,500 ms)", got, want)
	}
}

// A verdict's own latency and time made are its own latency_ms and
// created_at, not a judge's: the verdict's fields come before its judges'
// in its JSON.
func TestOwnLatencyIsTheVerdicts(t *testing.T) {
	v := pipeline.Verdict{Meta: pipeline.Meta{EventID: "bench-1", LatencyMS: 1234, CreatedAt: time.Date(2026, 12, 4, 17, 0, 0, 123456789, time.UTC)}, Decision: pipeline.DecisionPass,
		Judges: []pipeline.JudgeVote{{Name: "VERITAS", Verdict: pipeline.VotePass, LatencyMS: 999}}}
	b, err := json.Marshal(&v)
	if err != nil {
		t.Fatal(err)
	}
	if got := ownLatency(b); got != 1234 {
		t.Errorf("own latency %v, want 1234, of %s", got, b)
	}
	if got := madeAt(b); !got.Equal(v.CreatedAt) {
		t.Errorf("made at %v, want %v, of %s", got, v.CreatedAt, b)
	}
	if got := ownLatency([]byte(`{"decision":"pass"}`)); got != -1 {
		t.Errorf("own latency %v of a verdict without one, want -1", got)
	}
}
