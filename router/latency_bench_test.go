package router_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
)

// BenchmarkCallLatency times, one at a time and with the processors idle, what
// noesis's own path costs around model calls that take no time: one judge's
// call through the router, the tribunal (three judges at once, their answers
// read, the verdict), and the bridge's narrative, over HTTP/2 to a simulator in
// a process of its own that answers at once with answers of realistic lengths
// (a judge thinks ~700 tokens). Each iteration is a thought of its own, so
// nothing is a cache hit. It reports the median beside the mean:
//
//	go test -run '^$' -bench CallLatency ./router
func BenchmarkCallLatency(b *testing.B) {
	url := startSimChild(b, simAtOnce)
	chain, err := router.New(router.Config{
		Providers: []router.Provider{{Name: "sim", Kind: router.KindSim, BaseURL: url, APIKey: "k"}},
		Targets: []router.Target{
			{Name: "fast", Provider: "sim", Model: router.DefaultFastModel},
			{Name: "reasoning", Provider: "sim", Model: router.DefaultReasoningModel},
		},
		Tiers: map[pipeline.Tier][]string{pipeline.TierFast: {"fast"}, pipeline.TierReasoning: {"reasoning"}},
	}, nil, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer chain.Close()
	tribunal, err := pipeline.NewTribunal(chain, pipeline.TribunalConfig{})
	if err != nil {
		b.Fatal(err)
	}
	bridge := &pipeline.Bridge{Completer: chain}
	n := 0
	thought := func(b *testing.B) pipeline.Thought {
		n++
		th, err := pipeline.DecodeThought(fmt.Appendf(nil, `{"event_id":"evt-%d","agent_id":"daimon-7","content":{"user_input":"I will compact archive %d and report the space freed"},"coherence":0.7}`, n, n), 0)
		if err != nil {
			b.Fatal(err)
		}
		return th
	}
	timed := func(b *testing.B, op func(pipeline.Thought) error) {
		var took []time.Duration
		for b.Loop() {
			b.StopTimer()
			th := thought(b)
			b.StartTimer()
			start := time.Now()
			if err := op(th); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-us")
	}
	b.Run("judge", func(b *testing.B) {
		judge := pipeline.DefaultJudges()[0]
		timed(b, func(th pipeline.Thought) error {
			_, err := chain.Complete(context.Background(), pipeline.Request{Tier: pipeline.TierReasoning, Messages: tribunal.Messages(judge, &th), Temperature: 0.7, MaxTokens: 8192})
			return err
		})
	})
	b.Run("tribunal", func(b *testing.B) {
		timed(b, func(th pipeline.Thought) error { _, err := tribunal.Process(context.Background(), th); return err })
	})
	b.Run("bridge", func(b *testing.B) {
		timed(b, func(th pipeline.Thought) error { _, err := bridge.Process(context.Background(), th); return err })
	})
}
