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
