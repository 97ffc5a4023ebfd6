package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// chainRig is a rig whose FAST tier, the only one, calls chain: "openai:"
// targets at the rig's simulator (r.sim, made with openai) as an
// OpenAI-compatible provider, "modal:" targets at a second simulator, made
// with modal and returned, as Modal. The test sets the rest and validates.
func chainRig(t *testing.T, openai, modal sim.Config, chain string) (*rig, *sim.Server) {
	t.Helper()
	r := newRig(t, openai)
	m, modalURL := simtest.Start(t, modal)
	r.cfg.Provider, r.cfg.Tiers = "openai", []string{"fast"}
	r.cfg.OpenAIBaseURL, r.cfg.OpenAIAPIKey, r.cfg.ModalBaseURL = r.simURL, "k", modalURL
	r.cfg.Tier.Fast.Chain = chain
	return r, m
}

// A FAST chain of two providers: an OpenAI-compatible primary that fails
// every call, and a Modal-hosted fallback behind proxy auth that starts cold.
// The primary's breaker opens and it is skipped; the fallback answers, its cold
// start allowed for and reported; every narrative names the target that answered.
func TestFallbackBreakerAndModalColdStart(t *testing.T) {
	r, fallback := chainRig(t, sim.Config{Faults: sim.Faults{ErrorRate: 1}},
		sim.Config{ColdStart: 400 * time.Millisecond, ModalKey: "wk-test", ModalSecret: "ws-test"},
		"openai:primary/llama,modal:modal/llama")
	r.cfg.ModalKey, r.cfg.ModalSecret = "wk-test", "ws-test"
	r.cfg.ModalColdStartTimeout = 3 * time.Second
	r.cfg.LLMTimeout, r.cfg.LLMAttempts = 250*time.Millisecond, 1 // shorter than the cold start
	r.cfg.TargetBreakerFailures, r.cfg.TargetBreakerCooldown = 2, time.Hour
	r.cfg.Tier.Fast.Concurrency = 1
	if err := r.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	svc := runService(t, r.cfg)
	got := collect(t, r.nc)
	for i := 0; i < 6; i++ {
		th := thought(i, fmt.Sprintf("fallback thought %d", i))
		th.Stages = []pipeline.Stage{pipeline.StageNarrative}
		publishThought(t, r.js, th)
	}
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": 6})
	cold := 0
	for _, m := range got.messages("narratives") {
		var n pipeline.Narrative
		if err := json.Unmarshal(m.Data, &n); err != nil {
			t.Fatal(err)
		}
		if n.Target != "modal:modal/llama" || !n.Fallback || n.Provider != "modal" {
			t.Errorf("narrative from %s (fallback %v, provider %s)", n.Target, n.Fallback, n.Provider)
		}
		if n.ColdStart {
			cold++
		}
	}
	if cold != 1 {
		t.Errorf("%d narratives report a cold start, want 1 (the first call)", cold)
	}
	if n := r.sim.Stats().Requests; n != 2 {
		t.Errorf("the failing primary got %d calls; its breaker should open after 2 and skip it", n)
	}
	if st := fallback.Stats(); st.Requests != 6 || st.Faults["401"] != 0 || st.ColdStarts != 1 {
		t.Errorf("fallback stats %+v", st)
	}
	if states := svc.Chain().BreakerStates(); states["openai:primary/llama"] != "open" || states["modal:modal/llama"] != "closed" {
		t.Errorf("breakers %v", states)
	}
}

// priority "batch" goes to the batch target (Modal) first; other thoughts
// follow the chain. Each output carries its cost from NOESIS_PRICES.
func TestBatchRoutingAndCost(t *testing.T) {
	r, _ := chainRig(t, sim.Config{}, sim.Config{}, "openai:fast/llama,modal:batch/llama")
	r.cfg.Prices = "fast/llama=2/4,batch/llama=1/1"
	if err := r.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	runService(t, r.cfg)
	got := collect(t, r.nc)
	for i, prio := range []string{"batch", "normal", "critical", ""} {
		th := thought(i, "route me "+prio)
		th.Stages, th.Priority = []pipeline.Stage{pipeline.StageNarrative}, prio
		publishThought(t, r.js, th)
	}
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": 4})
	for _, m := range got.messages("narratives") {
		var n pipeline.Narrative
		if err := json.Unmarshal(m.Data, &n); err != nil {
			t.Fatal(err)
		}
		want, in, out := "openai:fast/llama", 2.0, 4.0
		if n.EventID == "evt-0000" {
			want, in, out = "modal:batch/llama", 1, 1
		}
		if n.Target != want {
			t.Errorf("%s went to %s, want %s", n.EventID, n.Target, want)
		}
		cost := (float64(n.Usage.PromptTokens)*in + float64(n.Usage.CompletionTokens)*out) / 1e6
		if want == "modal:batch/llama" {
			// plus its GPU time: at most the call's latency x 4.50 USD/h / 64 calls at once
			gpu := n.CostUSD - cost
			if gpu <= 0 || gpu > float64(n.LatencyMS+50)/3.6e6*4.5/64 {
				t.Errorf("%s GPU cost %v for %d ms", n.EventID, gpu, n.LatencyMS)
			}
			continue
		}
		if n.CostUSD <= 0 || n.CostUSD != cost {
			t.Errorf("%s cost %v, want %v", n.EventID, n.CostUSD, cost)
		}
	}
}

// Two worker processes with a limit of 4 requests a second on one target make
// at most 4 requests a second together (counted by the simulator).
func TestRequestLimitHoldsAcrossProcesses(t *testing.T) {
	r := newRig(t, sim.Config{})
	r.cfg.Tiers = []string{"fast"}
	r.cfg.Limits = "sim:meta-llama/Llama-3.3-70B-Instruct-fast=4/0/0"
	r.cfg.LimitWindow = time.Second
	if err := r.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, b := runService(t, r.cfg), runService(t, r.cfg)
	got := collect(t, r.nc)
	for i := 0; i < 14; i++ {
		th := thought(i, fmt.Sprintf("limited %d", i))
		th.Stages = []pipeline.Stage{pipeline.StageNarrative}
		publishThought(t, r.js, th)
	}
	got.waitFor(t, 30*time.Second, map[string]int{"narratives": 14})
	st := r.sim.Stats()
	// Requests are taken in the workers' windows and counted in the
	// simulator's seconds: one taken at a window's end may arrive in the next
	// second (under the race detector on a busy machine, several did), so the
	// limit is checked over every two seconds, with two to spare; two
	// processes counting apart would make 16.
	for sec, n := range st.PerSecond {
		if pair := n + st.PerSecond[sec+1]; pair > 2*4+2 {
			t.Errorf("seconds %d and %d saw %d requests, limit 4 a second", sec, sec+1, pair)
		}
	}
	if len(st.PerSecond) < 3 {
		t.Errorf("14 requests at 4 a second came in %d seconds: %v", len(st.PerSecond), st.PerSecond)
	}
	if a.Pool(pipeline.StageNarrative).Stats().Published == 0 || b.Pool(pipeline.StageNarrative).Stats().Published == 0 {
		t.Log("one process did all the work; the limit still held")
	}
}

// A provider past its budget is skipped for its fallback, across processes.
func TestBudgetSkipsASpentProvider(t *testing.T) {
	r, _ := chainRig(t, sim.Config{}, sim.Config{}, "openai:paid/llama,modal:own/llama")
	r.cfg.Prices = "paid/llama=1000/1000" // a call (about 190 tokens in, 51 out) costs about 0.24 USD
	r.cfg.Budgets = "openai=0.3"
	r.cfg.Tier.Fast.Concurrency = 1
	if err := r.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	runServiceLogging(t, r.cfg, &logs, zerolog.WarnLevel)
	got := collect(t, r.nc)
	for i := 0; i < 6; i++ {
		th := thought(i, fmt.Sprintf("budget %d", i))
		th.Stages = []pipeline.Stage{pipeline.StageNarrative}
		publishThought(t, r.js, th)
	}
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": 6})
	if n := r.sim.Stats().Requests; n != 2 {
		t.Errorf("the budgeted provider got %d calls; at about 0.24 USD each a 0.3 USD budget is spent after 2", n)
	}
	modal := 0
	for _, m := range got.messages("narratives") {
		var n pipeline.Narrative
		_ = json.Unmarshal(m.Data, &n)
		if n.Target == "modal:own/llama" {
			modal++
		}
	}
	if modal != 4 {
		t.Errorf("%d narratives from the fallback, want 4", modal)
	}
	if n := strings.Count(logs.String(), "provider past 80% of its monthly budget"); n != 1 {
		t.Errorf("the 80 %% budget warning was logged %d times, want once", n)
	}
}

// A 429 storm on the primary moves traffic to the fallback, and it comes back
// when the storm is over.
func TestRateLimitStormMovesTrafficToTheFallback(t *testing.T) {
	r, _ := chainRig(t, sim.Config{RetryAfter: time.Second}, sim.Config{}, "openai:primary/llama,modal:fallback/llama")
	r.cfg.LLMAttempts, r.cfg.Tier.Fast.Concurrency = 1, 1
	if err := r.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	runService(t, r.cfg)
	got := collect(t, r.nc)
	send := func(from, n int) {
		for i := from; i < from+n; i++ {
			th := thought(i, fmt.Sprintf("storm %d", i))
			th.Stages = []pipeline.Stage{pipeline.StageNarrative}
			publishThought(t, r.js, th)
		}
	}
	if err := r.sim.SetFaults(sim.Faults{RateLimitRate: 1}); err != nil {
		t.Fatal(err)
	}
	send(0, 10)
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": 10})
	if err := r.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the last Retry-After passes
	send(10, 5)
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": 15})
	targets := map[string]string{}
	for _, m := range got.messages("narratives") {
		var n pipeline.Narrative
		_ = json.Unmarshal(m.Data, &n)
		targets[n.EventID] = n.Target
	}
	for i := 0; i < 15; i++ {
		id, want := fmt.Sprintf("evt-%04d", i), "modal:fallback/llama"
		if i >= 10 {
			want = "openai:primary/llama"
		}
		if targets[id] != want {
			t.Errorf("%s answered by %s, want %s", id, targets[id], want)
		}
	}
	if n := r.sim.Stats().Faults["429"]; n < 1 || n > 3 {
		t.Errorf("the primary answered 429 %d times: the pause should spare it during the storm", n)
	}
}
