package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/docs/contract"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// TestEndToEndCleanRunFollowsTheContract runs 400 thoughts through one worker
// with nothing going wrong: one output of each kind per thought, every output
// and its headers as the contract says. The crash and its redeliveries are
// TestExactlyOnceWhenAWorkerIsKilledMidWork's.
func TestEndToEndCleanRunFollowsTheContract(t *testing.T) {
	t.Parallel()
	// Clear answers only: an unreadable one would be asked again, one more call.
	r := newRig(t, sim.Config{Shape: "tagged-lines"})
	runService(t, r.cfg)
	got := collect(t, r.nc)

	const n = 400
	var events, deep []string
	for i := 0; i < n; i++ {
		th := thought(i, fmt.Sprintf("thought number %d: I will tidy the archive", i))
		publishThought(t, r.js, th)
		events = append(events, th.EventID)
		if th.Content.Depth >= 4 {
			deep = append(deep, th.EventID)
		}
	}
	got.waitFor(t, 60*time.Second, map[string]int{"narratives": n, "verdicts": n, "analyses": len(deep)})
	got.settle(t, r.js) // any duplicate would show by now
	got.exactlyOnce(t, "narratives", events)
	got.exactlyOnce(t, "verdicts", events)
	got.exactlyOnce(t, "analyses", deep)
	if dl := got.distinct("dlq.narrative") + got.distinct("dlq.tribunal") + got.distinct("dlq.analysis"); dl != 0 {
		t.Errorf("%d dead letters in a clean run", dl)
	}

	// Every output and its headers follow the published contract.
	schemas, err := contract.Schemas()
	if err != nil {
		t.Fatal(err)
	}
	for kind, schema := range map[string]string{"narratives": contract.Narrative, "verdicts": contract.Verdict, "analyses": contract.Analysis} {
		for _, m := range got.messages(kind) {
			if err := contract.Validate(schemas, schema, m.Data); err != nil {
				t.Errorf("%s: %v", m.Subject, err)
			}
			if err := contract.Validate(schemas, contract.OutputHeaders, contract.Headers(m.Header)); err != nil {
				t.Errorf("%s headers: %v", m.Subject, err)
			}
		}
	}

	// The outputs are well-formed and say who made them.
	for _, m := range got.messages("verdicts")[:5] {
		var v pipeline.Verdict
		if err := json.Unmarshal(m.Data, &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Judges) != 3 || v.Model != "deepseek-ai/DeepSeek-R1-0528-fast" || v.Decision == "" || v.Usage.TotalTokens == 0 {
			t.Errorf("verdict incomplete: %s", m.Data)
		}
		if m.Subject != "noesis.verdicts."+v.AgentID || !strings.HasPrefix(m.Header.Get(nats.MsgIdHdr), v.EventID+":tribunal:") {
			t.Errorf("verdict on %s with id %q", m.Subject, m.Header.Get(nats.MsgIdHdr))
		}
		for _, j := range v.Judges {
			if strings.Contains(j.Reasoning, "Okay, let me") || strings.Contains(j.Reasoning, "</think>") {
				t.Errorf("chain of thought leaked into %s's reasoning", j.Name)
			}
		}
	}
	for _, m := range got.messages("narratives")[:5] {
		var nv pipeline.Narrative
		if err := json.Unmarshal(m.Data, &nv); err != nil {
			t.Fatal(err)
		}
		if nv.Narrative == "" || nv.Mode == "" || nv.Model != "meta-llama/Llama-3.3-70B-Instruct-fast" {
			t.Errorf("narrative incomplete: %s", m.Data)
		}
	}
	st := r.sim.Stats()
	if want := int64(n + 3*n + len(deep)); st.Requests != want {
		t.Errorf("simulator saw %d requests, want %d (one per narrative, judge and analysis)", st.Requests, want)
	}

}

func TestRepublishedThoughtYieldsOneOutput(t *testing.T) {
	// A publisher sends the same thought twice (a retry after a lost ack, or
	// no Nats-Msg-Id): both are stored and processed, the second answer comes
	// from the cache, and the outputs stream drops the second output by its
	// id, which names the event, the stage and the thought's digest.
	r := newRig(t, sim.Config{})
	runService(t, r.cfg)
	got := collect(t, r.nc)
	th := thought(1, "said twice")
	data, _ := json.Marshal(th)
	for i := 0; i < 2; i++ {
		if _, err := r.js.Publish(context.Background(), consumers.ThoughtSubject(th.AgentID), data); err != nil {
			t.Fatal(err)
		}
	}
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": 1, "verdicts": 1})
	got.settle(t, r.js)
	got.exactlyOnce(t, "narratives", []string{th.EventID})
	got.exactlyOnce(t, "verdicts", []string{th.EventID})
}

// No thought can silence another: another agent publishing first with the
// same event_id and Nats-Msg-Id, or the same agent reusing an event_id for
// different content, still gets its own outputs.
func TestAReusedEventIDSilencesNothing(t *testing.T) {
	r := newRig(t, sim.Config{})
	runService(t, r.cfg)
	got := collect(t, r.nc)
	publish := func(agent, text string) {
		th := pipeline.Thought{EventID: "evt-shared", AgentID: agent, Content: pipeline.Content{UserInput: text, Depth: 1}}
		data, _ := json.Marshal(th)
		// Published later than the thoughts stream's 100 ms duplicate window,
		// as a real later publish is: a publish inside it is refused as a
		// duplicate and tried again.
		for deadline := time.Now().Add(5 * time.Second); ; {
			ack, err := r.js.Publish(context.Background(), consumers.ThoughtSubject(agent), data, jetstream.WithMsgID("evt-shared"))
			if err != nil {
				t.Fatal(err)
			}
			if !ack.Duplicate {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("publish as %s: still a duplicate after 5 s", agent)
			}
		}
	}
	publish("mallory", "I got there first")
	publish("bob", "my own thought")
	publish("bob", "my own thought, reworded under the same event id")
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": 1, "verdicts": 1})
	waitConsumerIdle(t, r.js, "narrative", 3)
	waitConsumerIdle(t, r.js, "tribunal", 3)
	got.settle(t, r.js)
	agents := map[string]int{}
	for _, root := range []string{"narratives", "verdicts"} {
		for _, m := range got.messages(root) {
			agents[root+" "+strings.TrimPrefix(m.Subject, "noesis."+root+".")]++
		}
	}
	want := map[string]int{"narratives mallory": 1, "narratives bob": 2, "verdicts mallory": 1, "verdicts bob": 2}
	for k, n := range want {
		if agents[k] != n {
			t.Errorf("%s: %d outputs, want %d (all: %v)", k, agents[k], n, agents)
		}
	}
}

func TestTiersSplitAcrossProcesses(t *testing.T) {
	r := newRig(t, sim.Config{})
	fast := r.cfg
	fast.Tiers = []string{"fast"}
	reasoning := r.cfg
	reasoning.Tiers = []string{"reasoning"}
	a := runService(t, fast)
	b := runService(t, reasoning)
	if len(a.Pools()) != 1 || a.Pool(pipeline.StageNarrative) == nil || len(b.Pools()) != 1 || b.Pool(pipeline.StageTribunal) == nil {
		t.Fatalf("pools: a %v, b %v", a.Pools(), b.Pools())
	}
	got := collect(t, r.nc)
	var events []string
	for i := 0; i < 100; i++ {
		th := thought(i, "split work")
		th.Content.Depth = 1
		th.Content.UserInput = fmt.Sprintf("split work %d", i)
		publishThought(t, r.js, th)
		events = append(events, th.EventID)
	}
	got.waitFor(t, 30*time.Second, map[string]int{"narratives": 100, "verdicts": 100})
	got.settle(t, r.js)
	got.exactlyOnce(t, "narratives", events)
	got.exactlyOnce(t, "verdicts", events)
	if pa, pb := a.Pool(pipeline.StageNarrative).Stats(), b.Pool(pipeline.StageTribunal).Stats(); pa.Published != 100 || pb.Published != 100 {
		t.Fatalf("published: narrative pool %d, tribunal pool %d", pa.Published, pb.Published)
	}
	if st := r.sim.Stats(); st.PerCaller["narrative"] != 100 || st.PerCaller["veritas"] != 100 {
		t.Fatalf("simulator callers %v", st.PerCaller)
	}
}

func TestSeveralProcessesShareOneDurableConsumer(t *testing.T) {
	r := newRig(t, sim.Config{LatencyScale: 0.005}) // ~10 ms a call, so both workers get work
	r.cfg.Tiers = []string{"fast"}
	r.cfg.Tier.Fast.Concurrency = 4
	a, b := runService(t, r.cfg), runService(t, r.cfg)
	got := collect(t, r.nc)
	var events []string
	for i := 0; i < 200; i++ {
		th := thought(i, fmt.Sprintf("shared %d", i))
		th.Stages = []pipeline.Stage{pipeline.StageNarrative}
		publishThought(t, r.js, th)
		events = append(events, th.EventID)
	}
	got.waitFor(t, 30*time.Second, map[string]int{"narratives": 200})
	got.settle(t, r.js)
	got.exactlyOnce(t, "narratives", events)
	pa, pb := a.Pool(pipeline.StageNarrative).Stats().Published, b.Pool(pipeline.StageNarrative).Stats().Published
	if pa+pb != 200 || pa == 0 || pb == 0 {
		t.Fatalf("work split %d/%d, want both processes to share 200", pa, pb)
	}
	t.Logf("work split between two processes: %d / %d", pa, pb)
}

// The `make run` path: no NATS_URL, no API key: an embedded JetStream server
// and the in-process simulator, reached over TCP and HTTP like the real ones.
func TestEmbeddedDefaults(t *testing.T) {
	cfg := config.Defaults()
	cfg.NATSListen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.SimLatencyScale = 0
	if cfg.ResolvedProvider() != "sim" {
		t.Fatalf("provider %s", cfg.ResolvedProvider())
	}
	var logs syncBuffer
	svc := runServiceLogging(t, cfg, &logs, zerolog.InfoLevel)
	if svc.Embedded() == nil || svc.Simulator() == nil {
		t.Fatal("no embedded server or simulator")
	}
	nc, err := nats.Connect(svc.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	got := collect(t, nc)
	th := thought(3, "first thought on a fresh machine")
	publishThought(t, js, th)
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": 1, "verdicts": 1, "analyses": 1})
	if !strings.Contains(logs.String(), "USING THE SIMULATOR (LLM_PROVIDER=auto and NEBIUS_API_KEY is not set)") {
		t.Errorf("the simulator was not announced loudly:\n%s", logs.String())
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "jetstream")); err != nil {
		t.Errorf("JetStream did not store under NOESIS_DATA_DIR: %v", err)
	}
}

// With NEBIUS_API_KEY set, auto picks Nebius; here its base URL points at the
// simulator, which checks the bearer key, so the real provider path runs.
func TestNebiusPathWithKey(t *testing.T) {
	r := newRig(t, sim.Config{APIKey: "nb-test-key"})
	cfg := testConfig(t, r.ns, "")
	cfg.Provider, cfg.NebiusAPIKey, cfg.NebiusBaseURL = "auto", "nb-test-key", r.simURL+"/"
	if cfg.ResolvedProvider() != "nebius" {
		t.Fatalf("provider %s", cfg.ResolvedProvider())
	}
	svc := runService(t, cfg)
	if svc.Simulator() != nil {
		t.Fatal("an in-process simulator was started although Nebius was chosen")
	}
	got := collect(t, r.nc)
	th := thought(1, "through the nebius path")
	th.Content.Depth = 1
	publishThought(t, r.js, th)
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": 1, "verdicts": 1})
	var v pipeline.Verdict
	if err := json.Unmarshal(got.messages("verdicts")[0].Data, &v); err != nil {
		t.Fatal(err)
	}
	if v.Provider != "nebius" || v.Decision == "" || v.AbstentionCount != 0 {
		t.Fatalf("verdict %+v", v)
	}
	if st := r.sim.Stats(); st.Faults["401"] != 0 || st.Requests != 4 {
		t.Fatalf("simulator stats %+v", st)
	}
}
