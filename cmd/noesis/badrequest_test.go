package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/breaker"
	"github.com/noesis-dev/noesis/router/sim"
)

// One agent's thoughts that the provider refuses (past the model's context,
// decided by the provider from the request, in vLLM's and in OpenAI's error
// shape) belong to those thoughts alone: each is dead-lettered once per stage
// it asked for, with the provider's words, after one call per model request;
// no breaker opens; and another agent's thought then gets its verdict and
// narrative at once, every judge heard.
func TestRefusedThoughtsLeaveOtherAgentsAlone(t *testing.T) {
	t.Parallel()
	for _, style := range []struct{ name, words string }{
		{sim.ErrorsVLLM, "BadRequestError: This model's maximum context length is 12000 tokens. However, you requested"},
		{sim.ErrorsOpenAI, "context_length_exceeded: This model's maximum context length is 12000 tokens. However, your messages resulted in"},
	} {
		t.Run(style.name, func(t *testing.T) {
			r := newRig(t, sim.Config{ContextLength: 12_000, ErrorStyle: style.name})
			r.cfg.MaxThoughtBytes = 256 << 10
			// The shipped cool-downs' order (testConfig's are 50 ms): a breaker
			// opened by the refusals would still be open for the quiet agent.
			r.cfg.BreakerCooldown, r.cfg.TargetBreakerCooldown = time.Minute, 30*time.Second
			var logs syncBuffer
			svc := runServiceLogging(t, r.cfg, &logs, zerolog.WarnLevel)
			got := collect(t, r.nc)

			// About 15,000 tokens: past the 12,000-token context for the
			// narrative's 512 tokens as for a judge's 8,192.
			var long []string
			for i := range 6 {
				th := pipeline.Thought{EventID: fmt.Sprintf("long-%d", i), AgentID: "flooder",
					Content: pipeline.Content{UserInput: fmt.Sprintf("thought %d: ", i) + strings.Repeat("an overlong account ", 3000), Depth: 1}}
				publishThought(t, r.js, th)
				long = append(long, th.EventID)
			}
			got.waitFor(t, 20*time.Second, map[string]int{"dlq.narrative": len(long), "dlq.tribunal": len(long)})

			quiet := pipeline.Thought{EventID: "quiet-1", AgentID: "quiet", Content: pipeline.Content{UserInput: "I will tidy the archive", Depth: 1}}
			asked := time.Now()
			publishThought(t, r.js, quiet)
			got.waitFor(t, 5*time.Second, map[string]int{"verdicts": 1, "narratives": 1})
			t.Logf("the quiet agent's verdict and narrative after %s", time.Since(asked).Round(time.Millisecond))
			var v pipeline.Verdict
			if err := json.Unmarshal(got.messages("verdicts")[0].Data, &v); err != nil {
				t.Fatal(err)
			}
			if v.EventID != quiet.EventID || v.AbstentionCount != 0 || v.Decision == pipeline.DecisionUnavailable {
				t.Fatalf("the quiet agent's verdict %s: decision %s, %d abstentions: %+v", v.EventID, v.Decision, v.AbstentionCount, v.Judges)
			}

			got.settle(t, r.js)
			got.exactlyOnce(t, "dlq.narrative", long)
			got.exactlyOnce(t, "dlq.tribunal", long)
			if n := got.distinct("dlq.analysis"); n != 0 {
				t.Errorf("%d analysis dead letters for thoughts that asked for no analysis", n)
			}
			for _, stage := range []string{"narrative", "tribunal"} {
				for _, m := range got.messages("dlq." + stage) {
					reason, attempts := m.Header.Get(consumers.HeaderDLQReason), m.Header.Get(consumers.HeaderDLQAttempts)
					if attempts != "1" || !strings.Contains(reason, "HTTP 400") || !strings.Contains(reason, "request refused") ||
						!strings.Contains(reason, style.words) || strings.Contains(reason, "circuit open") {
						t.Errorf("dlq.%s: attempts %s, reason %q: want one delivery, and the provider's status and words", stage, attempts, reason)
					}
				}
			}
			// Asked once per model request: the narrative's and each judge's.
			if n := r.sim.Stats().Faults["context_length"]; n != int64(4*len(long)) {
				t.Errorf("the provider refused %d requests, want %d: a refusal is never asked again", n, 4*len(long))
			}
			if l := logs.String(); strings.Contains(l, "circuit breaker changed state") {
				t.Errorf("a breaker changed state:\n%s", l)
			}
			for name, state := range svc.Chain().BreakerStates() {
				if state != string(breaker.Closed) {
					t.Errorf("target %s's breaker is %s", name, state)
				}
			}
		})
	}
}
