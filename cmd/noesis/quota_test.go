package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/cmd/internal/service"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// An agent's requests per window hold across two workers: the simulator
// sees, in every whole window while the agent's backlog lasts, its quota of
// requests (within 2 %, a call admitted in the last instant of a window may
// arrive in the next), and every thought is still answered.
func TestAgentRequestQuotaHoldsAcrossTwoWorkers(t *testing.T) {
	const quota, window, thoughts = 100, 2 * time.Second, 500
	ns := natstest.RunServer(t)
	s, simURL := simtest.Start(t, sim.Config{})
	cfg := testConfig(t, ns, simURL)
	cfg.LimitWindow = window
	cfg.AgentQuotas = fmt.Sprintf("greedy=%d/0/0", quota)
	cfg.Tiers = []string{"fast"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	runService(t, cfg)
	runService(t, cfg)
	nc, js := natstest.Connect(t, ns)
	got := collect(t, nc)
	// Start at the beginning of a window, so the first is whole too.
	time.Sleep(time.Until(time.Unix(0, (time.Now().UnixNano()/int64(window)+1)*int64(window))))
	first := time.Now().UnixNano() / int64(window)
	for i := 0; i < thoughts; i++ {
		th := pipeline.Thought{EventID: fmt.Sprintf("g-%d", i), AgentID: "greedy", Content: pipeline.Content{UserInput: fmt.Sprintf("thought %d: I will compact the archive", i), Depth: 1},
			Stages: []pipeline.Stage{pipeline.StageNarrative}}
		publishThought(t, js, th)
	}
	got.waitFor(t, 60*time.Second, map[string]int{"narratives": thoughts})
	last := time.Now().UnixNano()/int64(window) - 1 // the window the last calls were in may be partial
	perWindow := map[int64]int64{}
	for sec, n := range s.Stats().PerSecond {
		perWindow[sec*int64(time.Second)/int64(window)] += n
	}
	whole := 0
	for w := first; w < last; w++ {
		n := perWindow[w]
		if n == 0 {
			continue // between the backlog's windows: held thoughts come back with jitter
		}
		whole++
		if n > quota+quota/50 || (w < last-1 && n < quota-quota/50) {
			t.Errorf("window %d: %d requests, want %d (within 2 %%); all: %v", w-first, n, quota, perWindow)
		}
	}
	if whole < 3 {
		t.Errorf("only %d windows with requests: %v", whole, perWindow)
	}
}

// testPrices are Nebius's prices for the default models, USD per million tokens.
const testPrices = "meta-llama/Llama-3.3-70B-Instruct-fast=0.25/0.75,deepseek-ai/DeepSeek-R1-0528-fast=2/6"

// One agent that spends its share of the provider's monthly budget
// (NOESIS_AGENT_BUDGET_SHARE, by default half) gets its further thoughts
// dead-lettered with the reason; the provider's budget is not spent, and
// another agent's thought still gets its verdict.
func TestAnAgentCannotSpendEveryonesBudget(t *testing.T) {
	ns := natstest.RunServer(t)
	_, simURL := simtest.Start(t, sim.Config{})
	// What one thought costs, measured: a first service with a quota that
	// records the agent's spend.
	cfg := testConfig(t, ns, simURL)
	cfg.Tiers = []string{"fast", "reasoning"}
	cfg.Prices = testPrices
	cfg.AgentQuotas = "probe=0/0/1000"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	probe, err := service.Start(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	nc, js := natstest.Connect(t, ns)
	got := collect(t, nc)
	publishThought(t, js, pipeline.Thought{EventID: "probe-1", AgentID: "probe", Content: pipeline.Content{UserInput: "I will rotate the keys", Depth: 1}})
	got.waitFor(t, 20*time.Second, map[string]int{"verdicts": 1, "narratives": 1})
	stop()
	if err = probe.Wait(); err != nil {
		t.Fatal(err)
	}
	perThought := 0.0
	eventually(t, 5*time.Second, func() bool {
		use, _, err := consumers.ReadAgentUse(context.Background(), js, time.Minute)
		for _, u := range use {
			if u.Agent == "probe" {
				perThought = u.USD
			}
		}
		return err == nil && perThought > 0
	}, func() string { return "the probe's spend was not recorded" })

	// The provider's budget is 20 thoughts' worth; the spender may use half.
	cfg = testConfig(t, ns, simURL)
	cfg.Tiers = []string{"fast", "reasoning"}
	cfg.Prices = testPrices
	cfg.Budgets = fmt.Sprintf("sim=%f", 20*perThought)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	runService(t, cfg)
	const spent = 30
	for i := 0; i < spent; i++ {
		publishThought(t, js, pipeline.Thought{EventID: fmt.Sprintf("s-%d", i), AgentID: "spender",
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
		if r := l.Header.Get(consumers.HeaderDLQReason); !strings.Contains(r, "agent spender has spent its monthly budget") {
			t.Errorf("a spender's letter says %q", r)
		}
	}
	budget := 20 * perThought
	use, bad, err := consumers.ReadAgentUse(context.Background(), js, time.Minute)
	if err != nil || len(bad) > 0 {
		t.Fatalf("agent use: %v %v", err, bad)
	}
	for _, u := range use {
		// Its half, and at most one call past it: a call alone is let through.
		if u.Agent == "spender" && (u.USD > 0.5*budget+perThought/2 || u.USD < 0.3*budget) {
			t.Errorf("the spender spent %.5f USD of its %.5f", u.USD, 0.5*budget)
		}
	}
	publishThought(t, js, pipeline.Thought{EventID: "other-1", AgentID: "other", Content: pipeline.Content{UserInput: "I will tidy the archive", Depth: 1}})
	eventually(t, 20*time.Second, func() bool {
		got.mu.Lock()
		defer got.mu.Unlock()
		return got.counts["verdicts"]["other-1"] == 1
	},
		func() string { return "the other agent's verdict did not come: the spender took the provider's budget" })
}
