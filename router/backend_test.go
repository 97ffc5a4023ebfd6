package router

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
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

// sendWatch is the HTTP transport under go-openai's doer in a test: as each
// request goes out it records whether the call still held its client
// request (respInfo.sent), then sends it.
type sendWatch struct {
	next       http.RoundTripper
	sent, held atomic.Int32
}

func (w *sendWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	w.sent.Add(1)
	if info, _ := req.Context().Value(respInfoKey{}).(*respInfo); info == nil || info.sent != nil {
		w.held.Add(1)
	}
	return w.next.RoundTrip(req)
}

// A call in flight holds no client request: go-openai has made the body
// when it hands the HTTP request to the doer, and the request goes back to
// its pool then, with its copies of the messages and the response format,
// as go-openai alone holds none while it waits.
func TestACallInFlightHoldsNoClientRequest(t *testing.T) {
	_, url := simtest.Start(t, sim.Config{})
	watch := &sendWatch{next: http.DefaultTransport}
	b := newOpenAIBackend(Provider{Name: "sim", Kind: KindSim, BaseURL: url, APIKey: "k"}, Target{Name: "t", Provider: "sim", Model: DefaultReasoningModel},
		&http.Client{Transport: watch}, strings.NewReplacer(), zerolog.Nop())
	req := &pipeline.Request{Tier: pipeline.TierReasoning, Messages: []pipeline.Message{{Role: pipeline.RoleUser, Content: "hello"}}, MaxTokens: 64,
		Schema: pipeline.VerdictSchema()}
	for range 3 {
		if _, err := b.Chat(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	if n, held := watch.sent.Load(), watch.held.Load(); n != 3 || held != 0 {
		t.Fatalf("%d requests sent, %d of them while the call held its client request; want 3 and none", n, held)
	}
}
