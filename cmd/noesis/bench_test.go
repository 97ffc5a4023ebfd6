package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/noesis-dev/noesis/cmd/internal/bench"
)

// Against the simulator, bench models reproduces the seed's profile within 5 %.
func TestBenchModelsReproducesTheProfile(t *testing.T) {
	t.Setenv("NOESIS_SIM_LATENCY_SCALE", "1")
	out, err := runCLI(t, "", "bench", "models", "--models", "meta-llama/Llama-3.3-70B-Instruct-fast", "--calls", "2", "--format", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rows []bench.ModelFigures
	if err := json.Unmarshal([]byte(out[strings.Index(out, "["):]), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	r := rows[0]
	if r.Calls != 2 || r.Errors != 0 || r.Tier != "fast" {
		t.Fatalf("row %+v", r)
	}
	within := func(got, want float64) bool { return math.Abs(got-want)/want <= 0.05 }
	if !within(r.LatencyP50ms, 1135) || !within(r.TokensPerSec, 44.9) {
		t.Fatalf("latency %.0f ms, %.1f tok/s; want 1135 ms and 44.9 tok/s within 5%%", r.LatencyP50ms, r.TokensPerSec)
	}
}

func TestBenchPipelineDeliversEveryOutput(t *testing.T) {
	for _, mode := range []string{"zero", "cache"} {
		out, err := runCLI(t, "", "bench", "pipeline", "--mode", mode, "--n", "300", "--in-process", "--ceiling=false", "--format", "json")
		if err != nil {
			t.Fatalf("%s: %v\n%s", mode, err, out)
		}
		var res bench.PipelineFigures
		if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if res.NotDelivered != 0 || res.DeadLetters != 0 || res.Both.Received != 300 || res.Throughput <= 0 || res.Both.P50ms <= 0 {
			t.Fatalf("%s: %+v", mode, res)
		}
		// The floor ran the same thoughts, with outputs of noesis's sizes,
		// each verdict after a transcript of noesis's size.
		if fl := res.Floor; fl == nil || fl.Both.Received != 300 || fl.Throughput <= 0 || fl.VerdictBytes < 1000 || fl.NarrativeBytes < 100 || fl.TranscriptBytes < fl.VerdictBytes {
			t.Fatalf("%s: JetStream floor %+v", mode, res.Floor)
		}
		if mode == "cache" && res.UpstreamCalls != 40 { // 10 distinct thoughts x (1 narrative + 3 judges), all warmed first
			t.Fatalf("cache mode made %d upstream calls, want 40", res.UpstreamCalls)
		}
	}
}

// Without --in-process the worker and the client floor's worker run as
// processes of their own, and each one's peak resident memory is reported;
// in seed mode the goal of issue 21 sets noesis's against the client
// floor's.
func TestBenchPipelineMeasuresEachWorkersMemory(t *testing.T) {
	t.Setenv(asCLIEnv, "1") // the children are this binary, as noesis
	// With a warm-up: the worker and the cached floor leave its thoughts out.
	out, err := runCLI(t, "", "bench", "pipeline", "--mode", "seed", "--n", "60", "--rate", "30", "--warmup", "2s", "--sequential", "0", "--ceiling=false", "--format", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var res bench.PipelineFigures
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.NotDelivered != 0 || res.Both.Received != 60 || res.PeakRSSMB <= 0 || res.WarmupThoughts != 30 {
		t.Fatalf("noesis: %+v", res)
	}
	fl := res.ClientFloor
	if fl == nil || fl.Both.Received != 60 || fl.PeakRSSMB <= 0 {
		t.Fatalf("client floor %+v, want every thought and its worker's peak RSS", fl)
	}
	cached := res.CachedClientFloor
	if cached == nil || cached.Both.Received != 60 || cached.PeakRSSMB <= 0 {
		t.Fatalf("client floor with the answer cache %+v, want every thought and its worker's peak RSS", cached)
	}
	rows := map[string]*bench.Goal{}
	for i, g := range res.Goals {
		if g.Goal == "worker peak RSS <= 1.25 x the client floor's" {
			rows[g.Floor] = &res.Goals[i]
		}
	}
	for floor, at := range map[string]float64{"client floor (go-openai alone)": fl.PeakRSSMB, "client floor with the answer cache": cached.PeakRSSMB} {
		goal := rows[floor]
		if goal == nil || goal.AtFloor != at || goal.Want != 1.25*fl.PeakRSSMB || goal.Noesis != res.PeakRSSMB {
			t.Fatalf("the memory goal beside the %s: %+v, want noesis's %.0f MB against 1.25 x the client floor's %.0f, that floor at %.0f",
				floor, goal, res.PeakRSSMB, fl.PeakRSSMB, at)
		}
	}
}
