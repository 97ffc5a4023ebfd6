package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/shared"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// An agent's requests per window hold across two workers. Two measures: the
// shared counters, read every 100 ms while the backlog lasts, never pass the
// quota in any window (they are what both workers admit by); and the
// simulator, independently, sees the agent's calls spread over at least as
// many windows as the quota demands (with each worker counting alone they
// would end in half as many, with no quota in one).
func TestAgentRequestQuotaHoldsAcrossTwoWorkers(t *testing.T) {
	t.Parallel()
	const quota, window, thoughts = 100, 2 * time.Second, 500
	r := greedyRig(t, quota, window, true)
	runService(t, r.cfg)
	runService(t, r.cfg)
	got := collect(t, r.nc)
	counted := map[string]float64{} // window -> the most the shared counter held
	// sample reads every window's shared counter: on a ticker while the
	// thoughts run (a window's count is the most seen), and once more after
	// the last narrative, so the last window is read at its end.
	sample := func(ctx context.Context) {
		kv, err := r.js.KeyValue(ctx, shared.RateBucket)
		if err != nil {
			return
		}
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			return
		}
		for k := range keys.Keys() {
			if strings.HasPrefix(k, "agent.requests.greedy.") {
				if e, err := kv.Get(ctx, k); err == nil {
					v, _ := strconv.ParseFloat(string(e.Value()), 64)
					counted[k] = max(counted[k], v)
				}
			}
		}
	}
	watch, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			sample(watch)
			select {
			case <-watch.Done():
				return
			case <-tick.C:
			}
		}
	}()
	for i := 0; i < thoughts; i++ {
		th := pipeline.Thought{EventID: fmt.Sprintf("g-%d", i), AgentID: "greedy", Content: pipeline.Content{UserInput: fmt.Sprintf("thought %d: I will compact the archive", i), Depth: 1},
			Stages: []pipeline.Stage{pipeline.StageNarrative}}
		publishThought(t, r.js, th)
	}
	got.waitFor(t, 60*time.Second, map[string]int{"narratives": thoughts})
	stopWatch()
	<-watched
	sample(context.Background())
	admitted := 0.0
	for k, n := range counted {
		admitted += n
		if n > quota {
			t.Errorf("window %s: the shared counter admitted %v requests, past the quota of %d", k, n, quota)
		}
	}
	if admitted < thoughts*0.98 {
		t.Errorf("the counters saw %v of %d requests: %v", admitted, thoughts, counted)
	}
	windows := map[int64]bool{}
	for sec := range r.sim.Stats().PerSecond {
		windows[sec*int64(time.Second)/int64(window)] = true
	}
	if len(windows) < thoughts/quota {
		t.Errorf("the simulator saw the calls in %d windows; a quota of %d a window needs %d for %d", len(windows), quota, thoughts/quota, thoughts)
	}
}

// First come, first served (NOESIS_FAIR_SHARE=false) changes the order in
// which thoughts and calls are served, not what an agent may spend: its
// request quota holds. (Its calls once went unmarked with their agent, and
// passed every quota.)
func TestAgentQuotaHoldsFirstComeFirstServed(t *testing.T) {
	t.Parallel()
	const quota, window, thoughts = 5, time.Second, 20
	r := greedyRig(t, quota, window, false)
	runService(t, r.cfg)
	got := collect(t, r.nc)
	for i := range thoughts {
		publishThought(t, r.js, pipeline.Thought{EventID: fmt.Sprintf("fifo-%d", i), AgentID: "greedy",
			Content: pipeline.Content{UserInput: fmt.Sprintf("thought %d: I will compact the archive", i), Depth: 1}, Stages: []pipeline.Stage{pipeline.StageNarrative}})
	}
	got.waitFor(t, 60*time.Second, map[string]int{"narratives": thoughts})
	// The simulator, which shares nothing with the counters, saw the calls
	// spread over as many windows as the quota demands; unmarked with their
	// agent, they all came in the first.
	windows := map[int64]bool{}
	for sec := range r.sim.Stats().PerSecond {
		windows[sec*int64(time.Second)/int64(window)] = true
	}
	if len(windows) < thoughts/quota {
		t.Errorf("the simulator saw the calls in %d windows; a quota of %d a window needs %d for %d", len(windows), quota, thoughts/quota, thoughts)
	}
}

// greedyRig is a rig whose fast tier alone runs, with the agent "greedy"
// allowed quota requests a window, fair share on or off.
func greedyRig(t *testing.T, quota int, window time.Duration, fairShare bool) *rig {
	t.Helper()
	r := newRig(t, sim.Config{})
	r.cfg.FairShare = fairShare
	r.cfg.LimitWindow = window
	r.cfg.AgentQuotas = fmt.Sprintf("greedy=%d/0/0", quota)
	r.cfg.Tiers = []string{"fast"}
	if err := r.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return r
}

// testPrices are Nebius's prices for the default models, USD per million tokens.
const testPrices = "meta-llama/Llama-3.3-70B-Instruct-fast=0.25/0.75,deepseek-ai/DeepSeek-R1-0528-fast=2/6"

// One agent that spends its share of the provider's monthly budget
// (NOESIS_AGENT_BUDGET_SHARE, by default half) gets its further thoughts
// dead-lettered with the reason; the provider's budget is not spent, and
// another agent's thought still gets its verdict.
func TestAnAgentCannotSpendEveryonesBudget(t *testing.T) {
	r := newRig(t, sim.Config{})
	// What one thought costs, measured: a first service with a quota that
	// records the agent's spend.
	r.cfg.Tiers = []string{"fast", "reasoning"}
	r.cfg.Prices = testPrices
	r.cfg.AgentQuotas = "probe=0/0/1000"
	if err := r.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	probe := startService(t, ctx, r.cfg)
	got := collect(t, r.nc)
	publishThought(t, r.js, pipeline.Thought{EventID: "probe-1", AgentID: "probe", Content: pipeline.Content{UserInput: "I will rotate the keys", Depth: 1}})
	got.waitFor(t, 20*time.Second, map[string]int{"verdicts": 1, "narratives": 1})
	stop()
	if err := probe.Wait(); err != nil {
		t.Fatal(err)
	}
	perThought := 0.0
	eventually(t, 5*time.Second, func() bool {
		use, _, err := consumers.ReadAgentUse(context.Background(), r.js, time.Minute)
		for _, u := range use {
			if u.Agent == "probe" {
				perThought = u.USD
			}
		}
		return err == nil && perThought > 0
	}, func() string { return "the probe's spend was not recorded" })

	// The provider's budget is 20 thoughts' worth; the spender may use half.
	cfg := testConfig(t, r.ns, r.simURL)
	cfg.Tiers = []string{"fast", "reasoning"}
	cfg.Prices = testPrices
	cfg.Budgets = fmt.Sprintf("sim=%f", 20*perThought)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	runService(t, cfg)
	const spent = 30
	for i := 0; i < spent; i++ {
		publishThought(t, r.js, pipeline.Thought{EventID: fmt.Sprintf("s-%d", i), AgentID: "spender",
			Content: pipeline.Content{UserInput: fmt.Sprintf("thought %d: I will rotate the keys", i), Depth: 1}})
	}
	eventually(t, 30*time.Second, func() bool {
		return got.distinct("verdicts")-1+got.distinct("dlq.tribunal") >= spent
	}, func() string {
		return fmt.Sprintf("%d verdicts, %d tribunal letters", got.distinct("verdicts")-1, got.distinct("dlq.tribunal"))
	})
	answered, letters := got.distinct("verdicts")-1, got.messages("dlq.tribunal")
	if answered == 0 || len(letters) == 0 {
		t.Errorf("the spender got %d verdicts and %d letters: want some of each", answered, len(letters))
	}
	for _, l := range letters {
		if reason := l.Header.Get(consumers.HeaderDLQReason); !strings.Contains(reason, "agent spender has spent its monthly budget") {
			t.Errorf("a spender's letter says %q", reason)
		}
	}
	budget := 20 * perThought
	use, bad, err := consumers.ReadAgentUse(context.Background(), r.js, time.Minute)
	if err != nil || len(bad) > 0 {
		t.Fatalf("agent use: %v %v", err, bad)
	}
	for _, u := range use {
		// Its half, and at most one call past it (a call alone is let
		// through), which costs less than a thought.
		if u.Agent == "spender" && (u.USD > 0.5*budget+perThought || u.USD < 0.3*budget) {
			t.Errorf("the spender spent %.5f USD of its %.5f", u.USD, 0.5*budget)
		}
	}
	publishThought(t, r.js, pipeline.Thought{EventID: "other-1", AgentID: "other", Content: pipeline.Content{UserInput: "I will tidy the archive", Depth: 1}})
	eventually(t, 20*time.Second, func() bool {
		got.mu.Lock()
		defer got.mu.Unlock()
		return got.counts["verdicts"]["other-1"] == 1
	},
		func() string { return "the other agent's verdict did not come: the spender took the provider's budget" })
}

// Each agent's thoughts held and quota use show in noesis status and the
// metrics; the metrics give the ten agents that hold the most their own
// series and sum the rest, so the label's values stay bounded.
func TestAgentsShowInStatusAndBoundedMetrics(t *testing.T) {
	t.Parallel()
	r := newRig(t, sim.Config{LatencyScale: 0})
	r.cfg.MetricsAddr = "127.0.0.1:0"
	r.cfg.AgentQuota = "1000/0/0"
	r.cfg.LimitWindow = time.Hour // the requests counted stay in one window
	r.cfg.Tiers = []string{"fast"}
	if err := r.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	svc := runService(t, r.cfg)
	got := collect(t, r.nc)
	total := 0
	for a := 0; a < 13; a++ { // agent-00 holds 1 thought, agent-12 holds 13
		for i := 0; i <= a; i++ {
			publishThought(t, r.js, pipeline.Thought{EventID: fmt.Sprintf("a%d-%d", a, i), AgentID: fmt.Sprintf("agent-%02d", a),
				Content: pipeline.Content{UserInput: fmt.Sprintf("agent %d, thought %d", a, i), Depth: 1}, Stages: []pipeline.Stage{pipeline.StageNarrative}})
			total++
		}
	}
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": total})

	st, err := readStatus(context.Background(), r.js, r.cfg.LimitWindow)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Agents) != 13 || st.Agents[0].Agent != "agent-12" || st.Agents[0].Thoughts != 13 || st.Agents[0].Requests != 13 {
		t.Fatalf("status agents: %+v", st.Agents)
	}
	var out strings.Builder
	if err := writeStatus(&out, st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "agent-12") || strings.Contains(out.String(), "agent-02 ") || !strings.Contains(out.String(), "(3 more agents") {
		t.Errorf("status table:\n%s", out.String())
	}

	base := "http://" + svc.MetricsAddr()
	eventually(t, 15*time.Second, func() bool {
		_, text := scrape(t, base+"/metrics")
		// The thoughts held and the requests are read in one poll; wait for
		// both, or a scrape between two polls reads the requests stale.
		return metricValue(text, "noesis_agent_thoughts_held", map[string]string{"agent": "agent-12"}) == 13 &&
			metricValue(text, "noesis_agent_thoughts_held", map[string]string{"agent": "_other"}) == 1+2+3 &&
			metricValue(text, "noesis_agent_requests_window", map[string]string{"agent": "agent-12"}) == 13
	}, func() string {
		_, text := scrape(t, base+"/metrics")
		var lines []string
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "noesis_agent_") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	})
	_, text := scrape(t, base+"/metrics")
	if n := strings.Count(text, "noesis_agent_thoughts_held{"); n != 11 {
		t.Errorf("%d noesis_agent_thoughts_held series, want 10 agents and _other", n)
	}
	if v := metricValue(text, "noesis_agent_requests_window", map[string]string{"agent": "agent-12"}); v != 13 {
		t.Errorf("agent-12's requests this window: %v", v)
	}
}

// A flood waits behind itself: one agent publishes 60 thoughts at once
// against a reasoning model that takes 6 calls at once, then another agent
// one thought; the other's verdict comes before most of the flood's. First
// come, first served (NOESIS_FAIR_SHARE=false) it comes after all of them.
func TestAFloodWaitsBehindItself(t *testing.T) {
	for _, fair := range []bool{true, false} {
		t.Run(fmt.Sprintf("fair_share=%t", fair), func(t *testing.T) {
			r := newRig(t, sim.Config{LatencyScale: 0.05, Lengths: sim.LengthsSeed}) // judges ~100 ms
			r.cfg.Limits = "sim:deepseek-ai/DeepSeek-R1-0528-fast=0/0/6"
			r.cfg.FairShare = fair
			r.cfg.Tiers = []string{"reasoning"}
			if err := r.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			runService(t, r.cfg)
			var mu sync.Mutex
			var order []string
			sub, err := r.nc.Subscribe("noesis.verdicts.*", func(m *nats.Msg) {
				mu.Lock()
				order = append(order, m.Header.Get(consumers.HeaderEventID))
				mu.Unlock()
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			const flood = 60
			for i := 0; i < flood; i++ {
				publishThought(t, r.js, pipeline.Thought{EventID: fmt.Sprintf("flood-%d", i), AgentID: "flood",
					Content: pipeline.Content{UserInput: fmt.Sprintf("flood %d: I will compact /archive", i), Depth: 1}, Stages: []pipeline.Stage{pipeline.StageTribunal}})
			}
			publishThought(t, r.js, pipeline.Thought{EventID: "quiet-1", AgentID: "quiet",
				Content: pipeline.Content{UserInput: "I will rotate the staging keys", Depth: 1}, Stages: []pipeline.Stage{pipeline.StageTribunal}})
			eventually(t, 60*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(order) == flood+1
			}, func() string { return fmt.Sprintf("%d of %d verdicts", len(order), flood+1) })
			place := slices.Index(order, "quiet-1")
			t.Logf("the quiet agent's verdict came %d of %d", place+1, flood+1)
			if fair && place > flood/3 {
				t.Errorf("with fair share the quiet agent's verdict came %d of %d, behind most of the flood", place+1, flood+1)
			}
			if !fair && place < flood/2 {
				t.Errorf("first come, first served, the quiet verdict came %d of %d: the test does not load the slots", place+1, flood+1)
			}
		})
	}
}
