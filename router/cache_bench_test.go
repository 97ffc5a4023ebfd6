package router

import (
	"context"
	"testing"

	"github.com/noesis-dev/noesis/pipeline"
)

func BenchmarkCacheKey(b *testing.B) {
	th := pipeline.Thought{EventID: "e1", AgentID: "daimon-1", Content: pipeline.Content{UserInput: "I will delete the backups older than 30 days", Depth: 4},
		Action: "rm -rf /backups/2025-*"}
	tr, err := pipeline.NewTribunal(pipeline.CompleterFunc(nil), pipeline.TribunalConfig{})
	if err != nil {
		b.Fatal(err)
	}
	req := pipeline.Request{Tier: pipeline.TierReasoning, Messages: tr.Messages(tr.Judges()[0], &th), Temperature: 0.7, MaxTokens: 8192}
	b.ReportAllocs()
	for b.Loop() {
		_ = CacheKey("nebius", "deepseek-ai/DeepSeek-R1-0528-fast", req)
	}
}

func BenchmarkCacheHit(b *testing.B) {
	c, err := NewCache(CacheConfig{TTL: DefaultCacheTTL()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	answer := func(context.Context) (pipeline.Response, error) {
		return pipeline.Response{Content: `{"verdict":"PASS","confidence":0.9}`, Reasoning: "Okay, let me look at what the agent actually did here.",
			Provider: "nebius", Model: "deepseek-ai/DeepSeek-R1-0528-fast", Usage: pipeline.Usage{PromptTokens: 812, CompletionTokens: 700, TotalTokens: 1512}}, nil
	}
	if _, err := c.Do(ctx, pipeline.TierReasoning, "k", answer); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r, _ := c.Do(ctx, pipeline.TierReasoning, "k", answer); !r.Cached {
				b.Fatal("miss")
			}
		}
	})
}
