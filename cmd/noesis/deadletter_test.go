package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nats-io/nats.go"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/docs/contract"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

func TestBadInputIsDeadLetteredAndWorkersGoOn(t *testing.T) {
	r := newRig(t, sim.Config{})
	r.cfg.MaxThoughtBytes = 2048
	svc := runService(t, r.cfg)
	got := collect(t, r.nc)

	cases := []struct {
		name, subject, body, reason string
	}{
		{"invalid json", "noesis.thoughts.a1", `{"event_id": "bad-1", "agent_id": `, "invalid JSON"},
		{"missing field", "noesis.thoughts.a1", `{"event_id":"bad-2","agent_id":"a1","content":{}}`, "content.user_input is required"},
		{"wrong type", "noesis.thoughts.a1", `{"event_id":"bad-3","agent_id":"a1","content":{"user_input":"x","depth":"five"}}`, "wrong type"},
		{"unknown stage", "noesis.thoughts.a1", `{"event_id":"bad-4","agent_id":"a1","content":{"user_input":"x"},"stages":["poetry"]}`, `unknown stage "poetry"`},
		{"oversize", "noesis.thoughts.a1", `{"event_id":"bad-5","agent_id":"a1","content":{"user_input":"` + strings.Repeat("y", 4096) + `"}}`, "over the 2048-byte limit"},
		{"agent mismatch", "noesis.thoughts.a2", `{"event_id":"bad-6","agent_id":"a1","content":{"user_input":"x"}}`, `does not match the subject's agent "a2"`},
		{"subject of two tokens", "noesis.thoughts.a1.extra", `{"event_id":"bad-7","agent_id":"a1","content":{"user_input":"x"}}`, `publish agent "a1"'s thoughts on noesis.thoughts.a1`},
		{"not an object", "noesis.thoughts.a1", `[]`, "a thought is a JSON object, not a JSON array"},
	}
	for _, c := range cases {
		if _, err := r.js.Publish(context.Background(), c.subject, []byte(c.body)); err != nil {
			t.Fatal(err)
		}
	}
	good := thought(1, "a good thought after the bad ones")
	good.Content.Depth = 1
	publishThought(t, r.js, good)

	// Every stage consumer accounts for every message; a thought none can
	// read gets one letter, on noesis.dlq.input, not one per stage.
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": 1, "verdicts": 1})
	eventually(t, 20*time.Second, func() bool { return len(got.messages("dlq.input")) >= len(cases) },
		func() string {
			return fmt.Sprintf("%d input letters, want %d", len(got.messages("dlq.input")), len(cases))
		})
	for _, durable := range []string{"narrative", "tribunal", "analysis"} {
		waitConsumerIdle(t, r.js, durable, uint64(len(cases)+1))
	}
	got.settle(t, r.js)
	schemas, err := contract.Schemas()
	if err != nil {
		t.Fatal(err)
	}
	msgs := got.messages("dlq.input")
	if len(msgs) != len(cases) {
		t.Errorf("dlq.input has %d letters, want %d", len(msgs), len(cases))
	}
	for _, stage := range []string{"narrative", "tribunal", "analysis"} {
		if n := len(got.messages("dlq." + stage)); n != 0 {
			t.Errorf("dlq.%s has %d letters for thoughts no stage could read", stage, n)
		}
	}
	for i, c := range cases {
		m := findLetter(msgs, c.body)
		if m == nil {
			t.Errorf("%s: no dead letter on dlq.input", c.name)
			continue
		}
		if reason := m.Header.Get(consumers.HeaderDLQReason); !strings.Contains(reason, c.reason) || !strings.Contains(reason, "bad input") {
			t.Errorf("%s: reason %q does not say %q", c.name, reason, c.reason)
		}
		if m.Header.Get(consumers.HeaderDLQAttempts) != "1" || m.Header.Get(consumers.HeaderDLQSubject) != c.subject || m.Header.Get(consumers.HeaderStage) != "input" {
			t.Errorf("%s: attempts %q subject %q stage %q", c.name, m.Header.Get(consumers.HeaderDLQAttempts), m.Header.Get(consumers.HeaderDLQSubject), m.Header.Get(consumers.HeaderStage))
		}
		if err := contract.Validate(schemas, contract.DeadLetterHeaders, contract.Headers(m.Header)); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if seq, _ := strconv.Atoi(m.Header.Get(consumers.HeaderDLQStreamSeq)); seq != i+1 {
			t.Errorf("%s: stream seq %d, want %d", c.name, seq, i+1)
		}
	}
	// Terminated, not redelivered: nothing is pending on the consumers.
	if st := svc.Pool(pipeline.StageNarrative).Stats(); st.DeadLettered != uint64(len(cases)) || st.Retried != 0 {
		t.Errorf("narrative pool stats %+v", st)
	}
}

func findLetter(msgs []*nats.Msg, body string) *nats.Msg {
	for _, m := range msgs {
		if string(m.Data) == body {
			return m
		}
	}
	return nil
}

func TestProviderFailuresRetryThenDeadLetter(t *testing.T) {
	r := newRig(t, sim.Config{})
	r.cfg.LLMAttempts = 1
	r.cfg.MaxDeliver = 3
	runService(t, r.cfg)
	got := collect(t, r.nc)

	flaky := thought(1, "sim:http=503@narrative the narrator's provider is down")
	flaky.Content.Depth = 1
	rejected := thought(2, "sim:http=400@narrative the narrator's provider refuses this")
	rejected.Content.Depth = 1
	publishThought(t, r.js, flaky)
	publishThought(t, r.js, rejected)

	got.waitFor(t, 20*time.Second, map[string]int{"verdicts": 2, "dlq.narrative": 2})
	got.settle(t, r.js)
	got.exactlyOnce(t, "dlq.narrative", []string{flaky.EventID, rejected.EventID})
	if n := got.distinct("narratives"); n != 0 {
		t.Fatalf("%d narratives from a failing provider", n)
	}
	for _, m := range got.messages("dlq.narrative") {
		var th pipeline.Thought
		_ = json.Unmarshal(m.Data, &th)
		reason, attempts := m.Header.Get(consumers.HeaderDLQReason), m.Header.Get(consumers.HeaderDLQAttempts)
		switch th.EventID {
		case flaky.EventID:
			if attempts != "3" || !strings.Contains(reason, "gave up after 3 deliveries") || !strings.Contains(reason, "HTTP 503") {
				t.Errorf("transient: attempts %s, reason %q", attempts, reason)
			}
		case rejected.EventID:
			if attempts != "1" || !strings.Contains(reason, "HTTP 400") || !strings.Contains(reason, "permanent") {
				t.Errorf("permanent: attempts %s, reason %q", attempts, reason)
			}
		}
	}
	// Exactly MaxDeliver upstream calls for the transient case, one for the permanent one.
	if n := r.sim.Stats().Faults["503"]; n != 3 {
		t.Errorf("%d calls to the failing narrator, want 3", n)
	}
	if n := r.sim.Stats().Faults["400"]; n != 1 {
		t.Errorf("%d calls for the rejected request, want 1", n)
	}
}

func TestSecretsNeverReachADeadLetter(t *testing.T) {
	const secret = "nb-live-0123456789abcdefSECRET"
	r := newRig(t, sim.Config{APIKey: "another-key"}) // answers 401 quoting the key it got
	r.cfg.Provider, r.cfg.OpenAIBaseURL, r.cfg.OpenAIAPIKey = "openai", r.simURL, secret
	var logs syncBuffer
	runServiceLogging(t, r.cfg, &logs, zerolog.TraceLevel)
	got := collect(t, r.nc)
	th := thought(1, "anything")
	th.Content.Depth = 1
	publishThought(t, r.js, th)
	got.waitFor(t, 20*time.Second, map[string]int{"dlq.narrative": 1, "dlq.tribunal": 1})
	for _, root := range []string{"dlq.narrative", "dlq.tribunal"} {
		for _, m := range got.messages(root) {
			all := fmt.Sprint(m.Header) + string(m.Data)
			if strings.Contains(all, secret) {
				t.Fatalf("%s carries the API key: %s", root, all)
			}
			if reason := m.Header.Get(consumers.HeaderDLQReason); !strings.Contains(reason, "401") || !strings.Contains(reason, "[REDACTED]") {
				t.Errorf("%s reason %q", root, reason)
			}
		}
	}
	if l := logs.String(); strings.Contains(l, secret) || !strings.Contains(l, "401") {
		t.Fatalf("trace-level logs carry the key, or miss the failure:\n%s", l)
	}
}

// A worker on a server whose max_payload is below the largest thought it
// is set to take says so when it starts: the server would refuse those
// thoughts at publish, before noesis sees them.
func TestServeWarnsOfThoughtsPastTheServersPayload(t *testing.T) {
	r := newRig(t, sim.Config{}) // its server: NATS's default max_payload, 1 MiB
	r.cfg.MaxThoughtBytes = 2 << 20
	if err := r.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var logs natstest.Buffer
	runServiceLogging(t, r.cfg, &logs, zerolog.WarnLevel)
	if !strings.Contains(logs.String(), "over the NATS server's max_payload") {
		t.Errorf("no warning of the server's max_payload; the log:\n%s", logs.String())
	}
}
