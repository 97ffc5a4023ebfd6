package router_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/answer"
	"github.com/noesis-dev/noesis/pipeline/breaker"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// syncBuffer is a log sink safe for the chain's concurrent calls.
type syncBuffer = natstest.Buffer

// structuredChain is a chain with one REASONING target at the simulator,
// with the given structured setting, logging at info to the returned buffer.
func structuredChain(t *testing.T, url, mode string) (*router.Router, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	c, err := router.New(router.Config{
		Providers: []router.Provider{{Name: "sim", Kind: router.KindSim, BaseURL: url, APIKey: "k"}},
		Targets:   []router.Target{{Name: "judge", Provider: "sim", Model: router.DefaultReasoningModel, Structured: mode}},
		Tiers:     map[pipeline.Tier][]string{pipeline.TierReasoning: {"judge"}},
		Timeout:   5 * time.Second, Attempts: 3, Backoff: 10 * time.Millisecond,
	}, nil, zerolog.New(logs).Level(zerolog.InfoLevel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, logs
}

// schemaRequest is a judge's request for task, asking for the verdict schema.
func schemaRequest(task string) pipeline.Request {
	req := judgeRequest(pipeline.TierReasoning, task)
	req.MaxTokens, req.Purpose, req.Schema = 8192, "judge:VERITAS", pipeline.VerdictSchema()
	return req
}

// A target that honours the schema answers one JSON object in it, the
// simulated judge's own decision, with its thinking apart.
func TestStructuredAnswersWhereTheTargetHonoursThem(t *testing.T) {
	s, url := simtest.Start(t, sim.Config{})
	c, _ := structuredChain(t, url, "")
	for _, task := range []string{"tidy the archive", "rm -rf the backups without asking", "wipe production tonight"} {
		resp, err := c.Complete(context.Background(), schemaRequest(task))
		if err != nil {
			t.Fatal(err)
		}
		a, err := answer.ReadSchema(resp.Content, "")
		if !resp.Structured || err != nil {
			t.Fatalf("%q: structured %v, %v: %q", task, resp.Structured, err, resp.Content)
		}
		if resp.Reasoning == "" || strings.Contains(resp.Content, "think") {
			t.Errorf("%q: the thinking is not apart: content %q", task, resp.Content)
		}
		in := s.Stats().Intents[sim.IntentKey("veritas", task)]
		if string(a.Verdict) != in.Verdict || a.Confidence != in.Confidence || string(a.Offense) != in.Offense || in.Shape != sim.ShapeSchema {
			t.Errorf("%q: read %+v, the judge meant %+v", task, a, in)
		}
	}
	plain := judgeRequest(pipeline.TierReasoning, "tidy the archive again")
	plain.MaxTokens = 8192
	if resp, err := c.Complete(context.Background(), plain); err != nil || resp.Structured {
		t.Fatalf("a request without a schema: structured %v, %v", resp.Structured, err)
	}
	if st := s.Stats(); st.Structured != 3 {
		t.Errorf("the simulator wrote %d answers in a schema, want 3", st.Structured)
	}
	if got := c.Structured()["judge"]; got != router.StructuredAuto {
		t.Errorf("the target's structured answers are %q, want auto", got)
	}
}

// A target that refuses response_format (in either error shape) is
// remembered after its first refusals and asked in text, at once, within the
// same calls: every call answers, no breaker opens, and the refusal is
// logged once.
func TestATargetThatRefusesTheSchemaIsAskedInText(t *testing.T) {
	for _, style := range []string{sim.ErrorsOpenAI, sim.ErrorsVLLM} {
		t.Run(style, func(t *testing.T) {
			s, url := simtest.Start(t, sim.Config{ResponseFormat: sim.FormatRefuse, ErrorStyle: style, Shape: "plain-lines"})
			c, logs := structuredChain(t, url, router.StructuredAuto)
			wave := func(from int) {
				var wg sync.WaitGroup
				for i := range 10 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						resp, err := c.Complete(context.Background(), schemaRequest(strings.Repeat("x", from+i)+" tidy the archive"))
						if err != nil {
							t.Errorf("call %d: %v", from+i, err)
							return
						}
						if _, err := answer.Read(resp.Content, resp.Reasoning, "", ""); resp.Structured || err != nil {
							t.Errorf("call %d: structured %v, read as text: %v", from+i, resp.Structured, err)
						}
					}()
				}
				wg.Wait()
			}
			wave(0)
			first := s.Stats().Faults["response_format"]
			if first < 1 || first > 10 {
				t.Fatalf("%d refusals in the first ten calls", first)
			}
			wave(10)
			if again := s.Stats().Faults["response_format"]; again != first {
				t.Errorf("%d refusals after the target was known to refuse, want none", again-first)
			}
			if got := c.Structured()["judge"]; got != "refused" {
				t.Errorf("the target's structured answers are %q, want refused", got)
			}
			if st := c.BreakerStates()["judge"]; st != string(breaker.Closed) {
				t.Errorf("breaker %s", st)
			}
			if n := strings.Count(logs.String(), "refuses structured answers"); n != 1 {
				t.Errorf("the refusal logged %d times, want once:\n%s", n, logs)
			}
			if strings.Contains(logs.String(), `"level":"warn"`) || strings.Contains(logs.String(), `"level":"error"`) {
				t.Errorf("a refusal of the format logged above info:\n%s", logs)
			}
		})
	}
}

// A schema the server cannot take (vLLM answers a bad one 400) is a refusal
// of the format too: the call is made again in text.
func TestABadSchemaIsAskedAgainInText(t *testing.T) {
	s, url := simtest.Start(t, sim.Config{ErrorStyle: sim.ErrorsVLLM, Shape: "plain-lines"})
	c, _ := structuredChain(t, url, router.StructuredAuto)
	req := schemaRequest("tidy the archive")
	req.Schema = &pipeline.AnswerSchema{Name: "broken", Schema: json.RawMessage(`["not", "an", "object"]`)}
	resp, err := c.Complete(context.Background(), req)
	if err != nil || resp.Structured {
		t.Fatalf("structured %v, %v", resp.Structured, err)
	}
	if n := s.Stats().Faults["response_format"]; n != 1 {
		t.Errorf("%d refusals, want 1", n)
	}
}

// A target that takes the schema but ignores it answers text, which the
// text reader reads.
func TestATargetThatIgnoresTheSchemaIsReadAsText(t *testing.T) {
	s, url := simtest.Start(t, sim.Config{ResponseFormat: sim.FormatIgnore, Shape: "plain-lines"})
	c, _ := structuredChain(t, url, "")
	resp, err := c.Complete(context.Background(), schemaRequest("tidy the archive"))
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Structured {
		t.Error("the schema was not sent")
	}
	if _, err := answer.ReadSchema(resp.Content, ""); err == nil {
		t.Fatalf("a text answer read as the schema's: %q", resp.Content)
	}
	a, err := answer.Read(resp.Content, resp.Reasoning, "", "")
	in := s.Stats().Intents[sim.IntentKey("veritas", "tidy the archive")]
	if err != nil || string(a.Verdict) != in.Verdict {
		t.Fatalf("read %+v, %v; the judge meant %+v", a, err, in)
	}
}

// "on" requires the schema: a refusal is the call's error, a request
// refused (no breaker counts it), not asked again in text; "off" never
// sends one.
func TestOnRequiresTheSchemaAndOffNeverSendsIt(t *testing.T) {
	s, url := simtest.Start(t, sim.Config{ResponseFormat: sim.FormatRefuse})
	on, _ := structuredChain(t, url, router.StructuredOn)
	_, err := on.Complete(context.Background(), schemaRequest("tidy the archive"))
	if !errors.Is(err, pipeline.ErrRequestRefused) || !errors.Is(err, pipeline.ErrPermanent) {
		t.Fatalf("err %v, want a refused request", err)
	}
	if n := s.Stats().Requests; n != 1 {
		t.Errorf("%d requests, want 1 (no text retry)", n)
	}
	if st := on.BreakerStates()["judge"]; st != string(breaker.Closed) {
		t.Errorf("breaker %s", st)
	}

	honest, url2 := simtest.Start(t, sim.Config{})
	off, _ := structuredChain(t, url2, router.StructuredOff)
	resp, err := off.Complete(context.Background(), schemaRequest("tidy the archive"))
	if err != nil || resp.Structured || honest.Stats().Structured != 0 {
		t.Fatalf("off: structured %v, simulator wrote %d in a schema, %v", resp.Structured, honest.Stats().Structured, err)
	}
}

// An answer asked in a schema is not the answer to the same messages asked
// in text: their cache keys differ.
func TestTheSchemaIsPartOfTheCacheKey(t *testing.T) {
	req := schemaRequest("tidy the archive")
	text := req
	text.Schema = nil
	if router.CacheKey("p", "m", req) == router.CacheKey("p", "m", text) {
		t.Fatal("the same key with and without the schema")
	}
}
