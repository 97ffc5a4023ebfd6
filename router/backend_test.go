package router

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
)

// fakeNative plays a provider with an API of its own behind the Backend seam:
// the first answer is a 429 asking for a pause, then it answers.
type fakeNative struct {
	calls []time.Time
}

func (f *fakeNative) Chat(_ context.Context, req *pipeline.Request) (Reply, error) {
	f.calls = append(f.calls, time.Now())
	if len(f.calls) == 1 {
		return Reply{}, &CallError{Class: ClassRateLimited, Status: 429, Target: "native", RetryAfter: 150 * time.Millisecond,
			kinds: []error{pipeline.ErrTransient, pipeline.ErrRateLimited}, msg: "rate limited"}
	}
	return Reply{Content: "answered " + req.Purpose, Usage: pipeline.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}}, nil
}

// A target's backend is the only provider-specific part: the chain's retry,
// Retry-After pause, pricing and accounting work the same over another API.
func TestAnotherBackendBehindTheSeam(t *testing.T) {
	c, err := New(Config{
		Providers: []Provider{{Name: "native", Kind: KindOpenAI, BaseURL: "http://127.0.0.1:1/v1"}},
		Targets:   []Target{{Name: "native", Provider: "native", Model: "m", PriceIn: 1e6, PriceOut: 2e6}},
		Tiers:     map[pipeline.Tier][]string{pipeline.TierFast: {"native"}},
		Backoff:   10 * time.Millisecond,
	}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	fake := &fakeNative{}
	c.targets["native"].backend = fake
	resp, err := c.Complete(context.Background(), pipeline.Request{Tier: pipeline.TierFast, MaxTokens: 16, Purpose: "narrative"})
	if err != nil {
		t.Fatal(err)
	}
	if len(fake.calls) != 2 || fake.calls[1].Sub(fake.calls[0]) < 150*time.Millisecond {
		t.Errorf("%d calls, the second %s after the first; want 2, at least the Retry-After apart", len(fake.calls), fake.calls[len(fake.calls)-1].Sub(fake.calls[0]))
	}
	if resp.Content != "answered narrative" || resp.CostUSD != 10+2*5 || resp.Target != "native" {
		t.Errorf("response %+v", resp)
	}
}
