package router_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/breaker"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// breakerLog records a chain's breaker changes with their causes.
type breakerLog struct {
	mu      sync.Mutex
	changes []string
}

func (l *breakerLog) record(target string, from, to breaker.State, cause error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, fmt.Sprintf("%s %s->%s: %v", target, from, to, cause))
}

func (l *breakerLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.changes, "\n")
}

// refusalChain is a chain whose targets (name -> provider URL and model) form
// the fast tier in the order given, with a breaker that opens at the first
// failure, so any failure counted against a target shows.
func refusalChain(t *testing.T, log *breakerLog, targets ...[3]string) *router.Router {
	t.Helper()
	cfg := router.Config{Tiers: map[pipeline.Tier][]string{}, Timeout: 5 * time.Second, Attempts: 3, Backoff: time.Millisecond,
		Breaker: breaker.Config{Failures: 1, Cooldown: time.Hour}, OnBreakerChange: log.record}
	providers := map[string]string{}
	for _, tg := range targets {
		name, url, model := tg[0], tg[1], tg[2]
		if providers[url] == "" {
			providers[url] = fmt.Sprintf("p%d", len(providers))
			cfg.Providers = append(cfg.Providers, router.Provider{Name: providers[url], Kind: router.KindOpenAI, BaseURL: url, APIKey: "sk-test-secret-key"})
		}
		cfg.Targets = append(cfg.Targets, router.Target{Name: name, Provider: providers[url], Model: model})
		cfg.Tiers[pipeline.TierFast] = append(cfg.Tiers[pipeline.TierFast], name)
	}
	return newRouter(t, cfg, nil)
}

// A provider's refusal of a request for what it holds, in the shapes
// providers give it, is that request's: permanent, with the provider's
// status, code and words, asked once, and no failure of the target's, however
// often it comes.
func TestRefusalsBelongToTheRequest(t *testing.T) {
	long := strings.Repeat("a long thought ", 1000) // 15,000 characters: about 3,750 tokens
	cases := []struct {
		name    string
		cfg     sim.Config
		prompt  string
		status  int
		refusal string
		code    string
		words   string
	}{
		{"context length, OpenAI's shape", sim.Config{ContextLength: 2048}, long, 400, router.RefusalContextLength, "context_length_exceeded", "maximum context length is 2048 tokens"},
		{"context length, vLLM's shape", sim.Config{ContextLength: 2048, ErrorStyle: sim.ErrorsVLLM}, long, 400, router.RefusalContextLength, "BadRequestError", "maximum context length is 2048 tokens"},
		{"content filter, OpenAI's shape", sim.Config{Blocked: []string{"forbidden"}}, "a Forbidden word", 400, router.RefusalContentPolicy, "content_filter", "content management policy"},
		{"content filter, vLLM's shape", sim.Config{Blocked: []string{"forbidden"}, ErrorStyle: sim.ErrorsVLLM}, "a forbidden word", 400, router.RefusalContentPolicy, "BadRequestError", "content management policy"},
		{"413", sim.Config{}, "sim:http=413", 413, router.RefusalContextLength, "invalid_request_error", "simulated HTTP 413"},
		{"422", sim.Config{}, "sim:http=422", 422, router.RefusalInvalid, "invalid_request_error", "simulated HTTP 422"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, url := simtest.Start(t, tc.cfg)
			var changes breakerLog
			c := refusalChain(t, &changes, [3]string{"only", url, "m"})
			for i := 0; i < 3; i++ {
				_, err := c.Complete(context.Background(), judgeRequest(pipeline.TierFast, tc.prompt))
				if !errors.Is(err, pipeline.ErrRequestRefused) || !errors.Is(err, pipeline.ErrPermanent) || errors.Is(err, pipeline.ErrTransient) {
					t.Fatalf("call %d: err = %v, want a permanent refusal", i, err)
				}
				var ce *router.CallError
				if !errors.As(err, &ce) || ce.Class != router.ClassRequest || ce.Status != tc.status || ce.Refusal != tc.refusal || ce.Code != tc.code ||
					router.ErrorClass(err) != router.ClassRequest {
					t.Fatalf("call error %+v, want status %d, refusal %s, code %s", ce, tc.status, tc.refusal, tc.code)
				}
				msg := err.Error()
				if !strings.Contains(ce.Message, tc.words) || !strings.Contains(msg, tc.words) || !strings.Contains(msg, fmt.Sprintf("HTTP %d", tc.status)) ||
					!strings.Contains(msg, tc.code) || strings.Contains(msg, "sk-test-secret-key") {
					t.Fatalf("the error does not say what the provider said: %q", msg)
				}
			}
			if n := s.Stats().Requests; n != 3 {
				t.Errorf("%d requests for 3 refused calls, want 3: a refusal is never retried", n)
			}
			if st := c.BreakerStates()["only"]; st != string(breaker.Closed) || changes.String() != "" {
				t.Fatalf("the target's breaker is %s after refusals; changes:\n%s", st, changes.String())
			}
			if _, err := c.Complete(context.Background(), judgeRequest(pipeline.TierFast, "a short thought")); err != nil {
				t.Fatalf("another request after the refusals: %v", err)
			}
		})
	}
}

// A failure that says the target is broken still opens its breaker, and the
// change carries the failure that caused it, for the log.
func TestABrokenTargetsBreakerOpensWithItsCause(t *testing.T) {
	_, url := simtest.Start(t, sim.Config{})
	var changes breakerLog
	c := refusalChain(t, &changes, [3]string{"only", url, "m"})
	if _, err := c.Complete(context.Background(), judgeRequest(pipeline.TierFast, "sim:http=503")); !errors.Is(err, pipeline.ErrTransient) {
		t.Fatalf("err = %v, want transient", err)
	}
	if got := changes.String(); !strings.HasPrefix(got, "only closed->open: transient failure:") || !strings.Contains(got, "HTTP 503") {
		t.Fatalf("breaker changes %q, want the opening with its cause", got)
	}
}

// A prompt past one model's context goes on to a target with another model
// (a bigger context may take it), asked once; a second target with the same
// model at the same provider is not asked. A content-policy refusal ends the
// chain: no other target is asked.
func TestOnlyAContextLengthRefusalFallsBack(t *testing.T) {
	long := strings.Repeat("a long thought ", 1000)
	small, smallURL := simtest.Start(t, sim.Config{ContextLengths: map[string]int{"small": 2048}, Blocked: []string{"forbidden"}, ErrorStyle: sim.ErrorsVLLM})
	big, bigURL := simtest.Start(t, sim.Config{})
	var changes breakerLog
	c := refusalChain(t, &changes, [3]string{"small", smallURL, "small"}, [3]string{"small-again", smallURL, "small"}, [3]string{"big", bigURL, "big"})

	r, err := c.Complete(context.Background(), judgeRequest(pipeline.TierFast, long))
	if err != nil {
		t.Fatal(err)
	}
	if r.Target != "big" || !r.Fallback {
		t.Fatalf("answered by %s (fallback %v), want big as a fallback", r.Target, r.Fallback)
	}
	if n := small.Stats().Requests; n != 1 {
		t.Errorf("the small model was asked %d times, want once", n)
	}

	before := big.Stats().Requests
	_, err = c.Complete(context.Background(), judgeRequest(pipeline.TierFast, "a forbidden word"))
	if !errors.Is(err, pipeline.ErrRequestRefused) || errors.Is(err, pipeline.ErrTransient) || router.ErrorClass(err) != router.ClassRequest {
		t.Fatalf("err = %v, want the refusal alone", err)
	}
	if n := big.Stats().Requests - before; n != 0 {
		t.Errorf("a content-policy refusal went on to %d more calls", n)
	}
	if got := changes.String(); got != "" {
		t.Fatalf("breakers changed:\n%s", got)
	}
}

// A hedged tier: a primary that refuses the request for its content ends
// the call; the backup is not asked as a fallback.
//
// The primary answers in 2 s, so the tier hedges only after that long
// (its p95), and its refusal, which comes at once, is in long before: a
// backup asked at all was asked as a fallback. The warm-up's calls go
// together, so none is hedged (no p95 before 20 answers); the refused call
// is told apart at the backup by its purpose all the same.
func TestARefusalIsNotHedged(t *testing.T) {
	profile := map[string]sim.Profile{"m": {Latency: 2 * time.Second, TokensPerSecond: 500}}
	_, primaryURL := simtest.Start(t, sim.Config{LatencyScale: 1, Lengths: sim.LengthsSeed, Profiles: profile, Blocked: []string{"forbidden"}})
	backup, backupURL := simtest.Start(t, sim.Config{LatencyScale: 1, Lengths: sim.LengthsSeed, Profiles: profile})
	c := hedgedChain(t, primaryURL, backupURL, 10*time.Second)
	warmUp(t, c, 25) // a latency record for the primary, so the tier hedges
	req := judgeRequest(pipeline.TierFast, "a forbidden word")
	req.Purpose = "refused"
	if _, err := c.Complete(context.Background(), req); !errors.Is(err, pipeline.ErrRequestRefused) || errors.Is(err, pipeline.ErrTransient) {
		t.Fatalf("err = %v, want the refusal", err)
	}
	if n := backup.Stats().PerCaller["refused"]; n != 0 {
		t.Fatalf("the backup was asked %d times after the primary's refusal", n)
	}
}

// A hedged tier whose backup is the same model at the same provider: the
// primary's refusal of a request as past the model's context is the
// backup's too, so the backup is not asked as a fallback (a backup at
// another provider or of another model would be: TestOnlyAContextLengthRefusalFallsBack).
// The primary answers in 2 s, so the tier hedges only after that long, and
// the refusal, at once, is in long before.
func TestATooLongRequestIsNotHedgedToTheSameModel(t *testing.T) {
	profile := map[string]sim.Profile{"small": {Latency: 2 * time.Second, TokensPerSecond: 500}}
	s, url := simtest.Start(t, sim.Config{LatencyScale: 1, Lengths: sim.LengthsSeed, Profiles: profile, ContextLengths: map[string]int{"small": 2048}})
	c := newRouter(t, router.Config{
		Providers: []router.Provider{{Name: "a", Kind: router.KindOpenAI, BaseURL: url, APIKey: "k"}},
		Targets:   []router.Target{{Name: "primary", Provider: "a", Model: "small"}, {Name: "backup", Provider: "a", Model: "small"}},
		Tiers:     map[pipeline.Tier][]string{pipeline.TierFast: {"primary", "backup"}},
		Timeout:   10 * time.Second, Attempts: 1, Hedge: map[pipeline.Tier]bool{pipeline.TierFast: true},
	}, nil)
	warmUp(t, c, 25) // a latency record for the primary, so the tier hedges
	req := judgeRequest(pipeline.TierFast, strings.Repeat("a long thought ", 1000))
	req.Purpose = "too-long"
	_, err := c.Complete(context.Background(), req)
	if !errors.Is(err, pipeline.ErrRequestRefused) {
		t.Fatalf("err = %v, want the context-length refusal", err)
	}
	if n := s.Stats().PerCaller["too-long"]; n != 1 {
		t.Fatalf("the too-long request was sent %d times, want once: the backup is the same model at the same provider", n)
	}
}
