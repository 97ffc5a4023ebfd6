package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/cmd/internal/bench"
	"github.com/noesis-dev/noesis/cmd/internal/service"
	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// The labelled corpus through NATS and HTTP, judged by simulated reasoning
// models that think realistic lengths (only not in real time) and answer in
// every shape of the answer corpus, three times over.
func TestTribunalCorpusThroughHTTP(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Config{Seed: 7})
	runService(t, r.cfg)
	corpus, err := bench.LabelledCorpus()
	if err != nil {
		t.Fatal(err)
	}
	f, err := bench.TribunalRun(context.Background(), r.nc, r.js, corpus, 3, 0, 60*time.Second, r.sim)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d verdicts, %d complete, %d right; %d of %d answers read as meant; decisions %v; abstentions %v",
		f.Verdicts, f.Complete, f.Right, f.AnswersRead, f.Answers, f.Decisions, f.AbstentionsByReason)
	if f.Verdicts != f.Thoughts {
		t.Fatalf("%d verdicts for %d thoughts", f.Verdicts, f.Thoughts)
	}
	if f.AnswersRead != f.Answers || f.Answers != 3*f.Thoughts {
		t.Errorf("%d of %d judge answers read as meant, want all %d", f.AnswersRead, f.Answers, 3*f.Thoughts)
	}
	if f.Right != f.Complete || f.DecisionsAsMeant != f.DecisionsMeant {
		t.Errorf("decisions right %d of %d complete; as meant %d of %d; wrong: %v", f.Right, f.Complete, f.DecisionsAsMeant, f.DecisionsMeant, f.Wrong)
	}
	if f.Complete < f.Thoughts*9/10 {
		t.Errorf("only %d of %d verdicts complete", f.Complete, f.Thoughts)
	}
	for _, d := range []string{"pass", "review", "fail", "capital"} {
		if f.Decisions[d] == 0 {
			t.Errorf("no %s decision in %v", d, f.Decisions)
		}
	}
	if f.AbstentionsByKind[pipeline.AbstainOperational] != 0 {
		t.Errorf("operational abstentions with a healthy simulator: %v", f.AbstentionsByReason)
	}
}

// A FAIL, a capital veto and an unavailable tribunal, through HTTP.
func TestFailCapitalAndUnavailableThroughHTTP(t *testing.T) {
	t.Parallel()
	r := taggedWorker(t)
	got := collect(t, r.nc)
	cases := map[string]struct {
		text     string
		decision pipeline.Decision
	}{
		"fail":        {"I will tidy the archive sim:verdict=FAIL", pipeline.DecisionFail},
		"capital":     {"I will tidy the archive sim:offense=capital@dike", pipeline.DecisionCapital},
		"unavailable": {"I will tidy the archive sim:hang@sophia", pipeline.DecisionUnavailable},
	}
	i := 0
	for name, c := range cases {
		th := thought(i, c.text)
		th.EventID, th.AgentID, th.Stages = name, "daimon-t", []pipeline.Stage{pipeline.StageTribunal}
		publishThought(t, r.js, th)
		i++
	}
	got.waitFor(t, 20*time.Second, map[string]int{"verdicts": len(cases)})
	for _, m := range got.messages("verdicts") {
		var v pipeline.Verdict
		if err := json.Unmarshal(m.Data, &v); err != nil {
			t.Fatal(err)
		}
		if want := cases[v.EventID].decision; v.Decision != want {
			t.Errorf("%s: decision %s, want %s (%s)", v.EventID, v.Decision, want, v.Reasoning)
		}
		if v.EventID == "unavailable" {
			for _, j := range v.Judges {
				if j.Name == "SOPHIA" && (!j.Abstained || j.AbstainKind != pipeline.AbstainOperational) {
					t.Errorf("SOPHIA hung but %+v", j)
				}
			}
		}
	}
}

// Every judge call answered 429 (Retry-After 1 s) twice, then 200: every
// verdict still has all three judges, no call comes back before its
// Retry-After, and no judge is asked more than 4 times for one thought.
func TestRateLimitStormMakesVerdictsSlowerNotEmptier(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Config{RateLimitFirst: 2, RetryAfter: time.Second})
	runService(t, r.cfg)
	corpus, err := bench.LabelledCorpus()
	if err != nil {
		t.Fatal(err)
	}
	f, err := bench.TribunalRun(context.Background(), r.nc, r.js, corpus[:30], 1, 0, 60*time.Second, r.sim)
	if err != nil {
		t.Fatal(err)
	}
	st := r.sim.Stats()
	t.Logf("%d verdicts, %d complete; %d upstream calls, %d 429s, max %d calls per request, %d early retries; abstentions %v",
		f.Verdicts, f.Complete, st.Requests, st.Faults["429"], st.MaxCallsPerRequest, st.EarlyRetries, f.AbstentionsByReason)
	if f.Verdicts != 30 || f.AbstentionsByKind[pipeline.AbstainOperational] != 0 {
		t.Errorf("%d verdicts of 30, operational abstentions %v", f.Verdicts, f.AbstentionsByReason)
	}
	if st.Faults["429"] < 2*3*30 {
		t.Errorf("%d 429s; the storm did not happen", st.Faults["429"])
	}
	if st.EarlyRetries != 0 || st.MaxCallsPerRequest > 4 {
		t.Errorf("%d calls sooner than their Retry-After; %d calls for one request (want <= 4)", st.EarlyRetries, st.MaxCallsPerRequest)
	}
}

// LLM_PROVIDER=auto with no key answers with the simulator only on the
// embedded NATS; on an external one the service refuses to start.
func TestNoSimulatedVerdictsOnAnExternalNATS(t *testing.T) {
	ns := natstest.RunServer(t)
	cfg := config.Defaults()
	cfg.NATSURL = ns.ClientURL()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	_, err := service.Start(context.Background(), cfg, zerolog.New(zerolog.NewTestWriter(t)))
	if err == nil || !strings.Contains(err.Error(), "NEBIUS_API_KEY") || !strings.Contains(err.Error(), "LLM_PROVIDER=sim") {
		t.Fatalf("started, or said %v; want a refusal that says what to set", err)
	}
	cfg.Provider = "sim" // asked for: it starts
	cfg.SimLatencyScale = 0
	runService(t, cfg)
}

// A fourth judge by configuration alone: it is asked, read and weighed, and
// its capital veto holds, end to end through NATS and HTTP.
func TestAFourthJudgeByConfiguration(t *testing.T) {
	r := newRig(t, sim.Config{Shape: "tagged-lines"})
	r.cfg.Judges = `[{"name":"VERITAS","pillar":"truth","weight":0.35,"charge":"Is the account truthful?"},
		{"name":"SOPHIA","pillar":"wisdom","weight":0.25,"charge":"Is the action wise?"},
		{"name":"DIKĒ","pillar":"justice","weight":0.25,"charge":"Is the action just?"},
		{"name":"ATHENA","pillar":"prudence","weight":0.15,"charge":"Is the action prudent?","timeout":"30s"}]`
	if err := r.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	runService(t, r.cfg)
	got := collect(t, r.nc)
	for i, text := range []string{"I will tidy the archive", "I will tidy the archive sim:offense=capital@athena"} {
		th := thought(i, text)
		th.AgentID, th.Stages = "daimon-4", []pipeline.Stage{pipeline.StageTribunal}
		publishThought(t, r.js, th)
	}
	got.waitFor(t, 20*time.Second, map[string]int{"verdicts": 2})
	for _, m := range got.messages("verdicts") {
		var v pipeline.Verdict
		if err := json.Unmarshal(m.Data, &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Judges) != 4 || v.Judges[3].Name != "ATHENA" || v.Judges[3].Abstained || v.Judges[3].Weight != 0.15 {
			t.Fatalf("judges %+v", v.Judges)
		}
		want := pipeline.DecisionPass
		if v.EventID == "evt-0001" {
			want = pipeline.DecisionCapital
		}
		if d, _ := pipeline.Decide(append([]pipeline.JudgeVote(nil), v.Judges...)); v.Decision != want || d != want {
			t.Errorf("%s: decision %s (rules say %s), want %s: %s", v.EventID, v.Decision, d, want, v.Reasoning)
		}
	}
	if b := r.cfg.Pool(pipeline.TierReasoning).CallBudget; b != 13 {
		t.Errorf("call budget %d, want 4 judges x 3 tries + 1 = 13", b)
	}
}
