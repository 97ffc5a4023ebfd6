package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/shared"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// An operator lists dead letters, fixes the cause, and replays them: each
// thought then gets the output it missed, once, and the letters are gone.
func TestDLQListAndReplay(t *testing.T) {
	r := newRig(t, sim.Config{})
	r.cfg.LLMAttempts, r.cfg.MaxDeliver = 1, 2
	runService(t, r.cfg)
	got := collect(t, r.nc)
	t.Setenv("NATS_URL", r.ns.ClientURL())

	// The tribunal's provider fails for a while.
	if err := r.sim.SetFaults(sim.Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	var events []string
	for i := 0; i < 3; i++ {
		th := thought(i, fmt.Sprintf("needs a replay %d", i))
		th.Stages = []pipeline.Stage{pipeline.StageTribunal}
		publishThought(t, r.js, th)
		events = append(events, th.EventID)
	}
	got.waitFor(t, 20*time.Second, map[string]int{"dlq.tribunal": 3})

	out, err := runCLI(t, "", "dlq", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if !strings.Contains(out, e) {
			t.Errorf("list does not show %s:\n%s", e, out)
		}
	}
	if !strings.Contains(out, "3 dead letters") || !strings.Contains(out, "no judge could be reached") {
		t.Errorf("list output:\n%s", out)
	}
	out, err = runCLI(t, "", "dlq", "list", "--json", "--stage", "tribunal")
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		EventID    string          `json:"event_id"`
		Attempts   int             `json:"attempts"`
		Transcript json.RawMessage `json:"transcript"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 3 {
		t.Fatalf("json list: %v\n%s", err, out)
	}
	if rows[0].Attempts != 2 || !strings.Contains(string(rows[0].Transcript), `"abstain_reason"`) {
		t.Errorf("letter %+v: want 2 attempts and the judges' partial transcript", rows[0])
	}

	// The provider recovers; replay one by event id, then the rest.
	if err := r.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, "", "dlq", "replay", "--id", events[0]); err != nil || !strings.Contains(out, "1 replayed") {
		t.Fatalf("replay one: %v %s", err, out)
	}
	if out, err := runCLI(t, "", "dlq", "replay", "--all"); err != nil || !strings.Contains(out, "2 replayed") {
		t.Fatalf("replay all: %v %s", err, out)
	}
	got.waitFor(t, 20*time.Second, map[string]int{"verdicts": 3})
	got.settle(t, r.js)
	got.exactlyOnce(t, "verdicts", events)
	if n := got.distinct("narratives"); n != 0 {
		t.Errorf("replay ran other stages: %d narratives", n)
	}
	if out, _ := runCLI(t, "", "dlq", "list"); !strings.Contains(out, "0 dead letters") {
		t.Errorf("letters left after replay:\n%s", out)
	}
	if _, err := runCLI(t, "", "dlq", "replay"); err == nil {
		t.Error("replay without --id or --all must fail")
	}
}

// A 429 storm slows the pool down instead of burning deliveries: no thought is
// dead-lettered or redelivered, each gets its outputs once, and the upstream
// calls during the storm stay bounded by Retry-After.
func TestRateLimitStormSlowsInsteadOfFailing(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Config{RetryAfter: time.Second})
	r.cfg.MaxDeliver = 2
	r.cfg.Tier.Fast.Concurrency, r.cfg.Tier.Reasoning.Concurrency = 8, 8
	svc := runService(t, r.cfg)
	got := collect(t, r.nc)

	if err := r.sim.SetFaults(sim.Faults{RateLimitRate: 1}); err != nil {
		t.Fatal(err)
	}
	stormStart := time.Now()
	var events []string
	for i := 0; i < 20; i++ {
		th := thought(i, fmt.Sprintf("during the storm %d", i))
		th.Content.Depth = 1
		publishThought(t, r.js, th)
		events = append(events, th.EventID)
	}
	// The storm lasts until every narrative has been held back by it and the
	// calls have met it three times a thought (a call's three tries, a
	// Retry-After apart): past the point where a pool that spent deliveries
	// on 429s would have spent them.
	eventually(t, 30*time.Second, func() bool {
		return svc.Pool(pipeline.StageNarrative).Stats().RateLimitWaits >= 20 && r.sim.Stats().Faults["429"] >= 3*20
	}, func() string {
		return fmt.Sprintf("the storm did not hold every thought: pool %+v, %d calls answered 429", svc.Pool(pipeline.StageNarrative).Stats(), r.sim.Stats().Faults["429"])
	})
	if err := r.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	storm := time.Since(stormStart)
	got.waitFor(t, 30*time.Second, map[string]int{"narratives": 20, "verdicts": 20})
	got.settle(t, r.js)
	got.exactlyOnce(t, "narratives", events)
	got.exactlyOnce(t, "verdicts", events)
	for _, st := range []pipeline.Stage{pipeline.StageNarrative, pipeline.StageTribunal} {
		ps := svc.Pool(st).Stats()
		if ps.DeadLettered != 0 || ps.Retried != 0 {
			t.Errorf("%s pool burned deliveries in the storm: %+v", st, ps)
		}
	}
	// A judge may outlast the storm within its own timeout (then its peers
	// abstain, as the origin's rules say); the narrator has only the pool's patience.
	if svc.Pool(pipeline.StageNarrative).Stats().RateLimitWaits == 0 {
		t.Error("the narrative pool never waited on the rate limit")
	}
	// Each target is paused for Retry-After after a 429, so the storm sees at
	// most one wave of calls (up to every busy slot: 8 narrative + 8x3 judge
	// calls) per second, plus the first wave.
	limit := int64(32 * (int(storm.Seconds()) + 2))
	if n := r.sim.Stats().Faults["429"]; n > limit || n == 0 {
		t.Errorf("%d rate-limited calls in a %s storm, want 1..%d", n, storm.Round(time.Second), limit)
	}
	t.Logf("storm of %s: %d calls answered 429", storm.Round(time.Millisecond), r.sim.Stats().Faults["429"])
}

// However many tries and judges, one delivery of a thought makes at most
// NOESIS_CALL_BUDGET upstream calls.
func TestCallBudgetCapsUpstreamCalls(t *testing.T) {
	r := newRig(t, sim.Config{})
	r.cfg.CallBudget, r.cfg.LLMAttempts, r.cfg.MaxDeliver = 4, 3, 2
	// Breakers that open would refuse some of the second delivery's calls
	// (the target's opens at its 5th failure, while the judges' calls are in
	// flight): how many then depends on timing. Here only the budget limits.
	r.cfg.TargetBreakerFailures, r.cfg.BreakerFailures = 100, 100
	runService(t, r.cfg)
	got := collect(t, r.nc)
	th := thought(1, "sim:http=503 every provider call fails")
	th.Stages = []pipeline.Stage{pipeline.StageTribunal}
	publishThought(t, r.js, th)
	got.waitFor(t, 20*time.Second, map[string]int{"dlq.tribunal": 1})
	// 3 judges x 3 tries would be 9 calls a delivery; the budget allows 4.
	if n := r.sim.Stats().Requests; n != 4*2 {
		t.Fatalf("%d upstream calls over 2 deliveries, want 8 (budget 4 each)", n)
	}
	l := got.messages("dlq.tribunal")[0]
	if reason := l.Header.Get("Noesis-Dlq-Reason"); !strings.Contains(reason, "budget") {
		t.Errorf("reason %q does not mention the budget", reason)
	}
}

// Two worker processes share the answer cache through NATS KV: 50 identical
// thoughts at once make one upstream call per caller in all, not one per
// process, and a repeat later makes none.
func TestSharedCacheAcrossProcesses(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Config{LatencyScale: 0.05}) // ~60-100 ms a call: the processes overlap
	// A worker alone shares with nobody (TestAloneWorkerLeavesTheSharedCacheEmpty):
	// a is alone until b's first announcement reaches it, and b finds a
	// in the registry as it starts.
	a := runService(t, r.cfg)
	natstest.Eventually(t, 10*time.Second, func() bool {
		ws, err := shared.ListWorkers(context.Background(), r.js)
		return a.Cache().Alone() && err == nil && len(ws) == 1
	}, func() string { return "the first worker never saw itself alone in the registry" })
	b := runService(t, r.cfg)
	natstest.Eventually(t, 10*time.Second, func() bool { return !a.Cache().Alone() }, func() string { return "the first worker never saw the second join" })
	got := collect(t, r.nc)
	var events []string
	for i := 0; i < 50; i++ {
		th := pipeline.Thought{EventID: fmt.Sprintf("same-%02d", i), AgentID: "daimon-1", Content: pipeline.Content{UserInput: "one thought, fifty times", Depth: 1}}
		publishThought(t, r.js, th)
		events = append(events, th.EventID)
	}
	got.waitFor(t, 30*time.Second, map[string]int{"narratives": 50, "verdicts": 50})
	got.settle(t, r.js)
	got.exactlyOnce(t, "narratives", events)
	got.exactlyOnce(t, "verdicts", events)
	for _, caller := range []string{"narrative", "veritas", "sophia", "dike"} {
		if n := r.sim.Stats().PerCaller[caller]; n != 1 {
			t.Errorf("%s: %d upstream calls from two processes, want 1", caller, n)
		}
	}
	sa, sb := a.Cache().Stats(), b.Cache().Stats()
	if sa.SharedHits+sb.SharedHits == 0 {
		t.Errorf("no shared hits: a %+v, b %+v", sa, sb)
	}
	if a.Pool(pipeline.StageNarrative).Stats().Published == 0 || b.Pool(pipeline.StageNarrative).Stats().Published == 0 {
		t.Errorf("one process did all the work; the test proves nothing about sharing")
	}
	t.Logf("process a: %+v; process b: %+v", sa, sb)
}

// A worker alone shares its answers with nobody: once the registry shows
// no other worker, its calls go straight to the model and the shared cache
// stays empty; a second worker makes both share (TestSharedCacheAcrossProcesses).
func TestAloneWorkerLeavesTheSharedCacheEmpty(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Config{LatencyScale: 0.05}) // ~60-100 ms a call: worth sharing, were anyone there
	a := runService(t, r.cfg)
	natstest.Eventually(t, 10*time.Second, a.Cache().Alone, func() string { return "the worker never saw itself alone" })
	got := collect(t, r.nc)
	var events []string
	for i := range 5 {
		th := pipeline.Thought{EventID: fmt.Sprintf("alone-%d", i), AgentID: "daimon-1", Content: pipeline.Content{UserInput: fmt.Sprintf("thought %d, alone", i), Depth: 1}}
		publishThought(t, r.js, th)
		events = append(events, th.EventID)
	}
	got.waitFor(t, 30*time.Second, map[string]int{"narratives": 5, "verdicts": 5})
	got.exactlyOnce(t, "verdicts", events)
	st := a.Cache().Stats()
	if st.Misses != 20 || st.SharedSkipped != st.Misses || st.SharedHits+st.SharedWaits != 0 {
		t.Errorf("cache %+v: want 20 misses (5 thoughts, 4 calls each), every one skipping the shared level", st)
	}
	for _, tier := range []pipeline.Tier{pipeline.TierFast, pipeline.TierReasoning} {
		kv, err := r.js.KeyValue(context.Background(), shared.CacheBucket(tier))
		if err != nil {
			t.Fatal(err)
		}
		if keys, err := kv.Keys(context.Background()); !errors.Is(err, jetstream.ErrNoKeysFound) {
			t.Errorf("%s: the shared cache holds %d keys (%v), want none", tier, len(keys), err)
		}
	}
}

// A thought that cannot be decoded has one letter, for every stage; replaying
// it runs every stage again, which (the thought being as bad as before) makes
// one new letter, on the replay subject, not one per stage.
func TestReplayOfBadInputMakesOneLetter(t *testing.T) {
	r := newRig(t, sim.Config{})
	runService(t, r.cfg)
	got := collectOn(t, r.nc, "noesis.dlq.>")
	if _, err := r.js.Publish(context.Background(), consumers.ThoughtSubject("daimon-1"), []byte(`{"event_id":"broken-1","agent_id":"daimon-1"`)); err != nil {
		t.Fatal(err)
	}
	got.waitFor(t, 20*time.Second, map[string]int{"dlq.input": 1})
	for _, durable := range []string{"narrative", "tribunal", "analysis"} {
		waitConsumerIdle(t, r.js, durable, 1)
	}
	t.Setenv("NATS_URL", r.ns.ClientURL())
	out, err := runCLI(t, "", "dlq", "list", "--stage", "input")
	if err != nil || !strings.Contains(out, "1 dead letters") || !strings.Contains(out, "invalid JSON") {
		t.Fatalf("list --stage input: %v\n%s", err, out)
	}
	out, err = runCLI(t, "", "dlq", "replay", "--all", "--stage", "input")
	if err != nil || !strings.Contains(out, "stage input) as thought seq 2") {
		t.Fatalf("replay --stage input: %v\n%s", err, out)
	}
	for _, durable := range []string{"narrative", "tribunal", "analysis"} {
		waitConsumerIdle(t, r.js, durable, 2)
	}
	got.settle(t, r.js)
	all, err := consumers.ListLetters(context.Background(), r.js, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Stage != consumers.StageInput || all[0].Subject != consumers.ReplaySubject("daimon-1") || all[0].Seq != 2 {
		t.Errorf("letters after the replay: %+v; want one, for the replayed thought", all)
	}
	if n := len(got.messages("dlq.input")); n != 2 {
		t.Errorf("%d letters seen on %s, want 2 (the first and the replay's)", n, consumers.DLQSubject(consumers.StageInput))
	}
}
