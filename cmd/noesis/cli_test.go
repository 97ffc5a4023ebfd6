package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// runCLI runs the noesis command line in-process and returns its output.
func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut) // progress bars and logs
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(append(args, "--env-file", "/dev/null"))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestPublishCommand(t *testing.T) {
	_, _, js := streamsOnly(t, consumers.StreamsConfig{})

	out, err := runCLI(t, "", "publish", "--agent", "daimon-7", "--text", "I will rotate the keys", "--depth", "4", "--coherence", "0.6",
		"--stages", "tribunal,analysis", "--event-id", "cli-1")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(out, "published event_id=cli-1 subject=noesis.thoughts.daimon-7 stream=NOESIS_THOUGHTS seq=1 duplicate=false") {
		t.Fatalf("output %q", out)
	}
	// Another thought under the same event id is stored, at once: the
	// thoughts stream deduplicates no message id; only outputs are
	// deduplicated, by event, stage and the thought's digest.
	out, err = runCLI(t, `{"event_id":"cli-1","agent_id":"daimon-7","content":{"user_input":"again"}}`, "publish", "--file", "-")
	if err != nil || !strings.Contains(out, "seq=2 duplicate=false") {
		t.Fatalf("a second thought under cli-1 must be stored: %v %s", err, out)
	}
	s, _ := js.Stream(context.Background(), consumers.StreamThoughts)
	msg, err := s.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var th pipeline.Thought
	if err := json.Unmarshal(msg.Data, &th); err != nil {
		t.Fatal(err)
	}
	if th.Content.Depth != 4 || *th.Coherence != 0.6 || len(th.Stages) != 2 || th.Timestamp == nil || msg.Header.Get("Nats-Msg-Id") != "" { // no message id: any agent could read it
		t.Fatalf("stored thought %+v, headers %v", th, msg.Header)
	}

	// Invalid thoughts are refused before they are sent.
	for _, args := range [][]string{
		{"publish", "--text", "no agent"},
		{"publish", "--agent", "a.b", "--text", "dotted agent"},
		{"publish", "--agent", "a", "--text", "x", "--stages", "poetry"},
	} {
		if _, err := runCLI(t, "", args...); err == nil || !strings.Contains(err.Error(), "bad input") {
			t.Errorf("%v: err = %v, want bad input", args, err)
		}
	}
}

func TestServeRejectsBadConfigNamingTheVariable(t *testing.T) {
	t.Setenv("NOESIS_REASONING_CONCURRENCY", "lots")
	_, err := runCLI(t, "", "serve")
	if err == nil || !strings.Contains(err.Error(), "NOESIS_REASONING_CONCURRENCY: want a whole number") {
		t.Fatalf("err = %v", err)
	}
	t.Setenv("NOESIS_REASONING_CONCURRENCY", "4")
	if _, err := runCLI(t, "", "serve", "--tiers", "fast,ultra"); err == nil || !strings.Contains(err.Error(), `NOESIS_TIERS: unknown tier "ultra"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestVersionCommand(t *testing.T) {
	out, err := runCLI(t, "", "version")
	if err != nil || !strings.HasPrefix(out, "noesis dev (go") {
		t.Fatalf("%q %v", out, err)
	}
}

// A model call longer than AckWait is kept alive by in-progress heartbeats:
// the thought is never handed to a second worker, and the model is asked once.
func TestSlowCallIsNotRedelivered(t *testing.T) {
	r := newRig(t, sim.Config{LatencyScale: 2.2}) // Llama-3.3-70B-fast: about 2.5 s
	r.cfg.Tiers = []string{"fast"}
	r.cfg.Tier.Fast.AckWait = time.Second
	r.cfg.Tier.Fast.CacheTTL = new(time.Duration) // 0: no coalescing: a redelivery would reach the simulator
	svc := runService(t, r.cfg)
	got := collect(t, r.nc)
	th := thought(1, "a slow one")
	th.Stages = []pipeline.Stage{pipeline.StageNarrative}
	publishThought(t, r.js, th)
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": 1})
	c, err := r.js.Consumer(context.Background(), consumers.StreamThoughts, "narrative")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered != 0 || r.sim.Stats().Requests != 1 || svc.Pool(pipeline.StageNarrative).Stats().Retried != 0 {
		t.Fatalf("redelivered %d, upstream requests %d", info.NumRedelivered, r.sim.Stats().Requests)
	}
}

// `noesis publish` to a full thoughts stream says so, and fails.
func TestPublishToAFullNoesis(t *testing.T) {
	_, _, js := streamsOnly(t, consumers.StreamsConfig{ThoughtsMaxBytes: 16 << 10})
	for i := 0; ; i++ {
		th := thought(i, strings.Repeat("f", 1<<10))
		data, _ := json.Marshal(th)
		if _, err := js.Publish(context.Background(), consumers.ThoughtSubject(th.AgentID), data); err != nil {
			break
		}
		if i == 100 {
			t.Fatal("100 KiB of thoughts stored in a 16 KiB stream")
		}
	}
	out, err := runCLI(t, "", "publish", "--agent", "daimon-7", "--text", "one more", "--event-id", "too-many")
	if err == nil || !strings.Contains(err.Error(), "noesis is full: NOESIS_THOUGHTS refused it (maximum bytes exceeded)") || !strings.Contains(err.Error(), "too-many not stored") {
		t.Fatalf("publish to a full stream: %v, output %q", err, out)
	}
}
