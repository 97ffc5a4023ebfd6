package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/shared"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// hostileID clears the operator's screen and sets the window's title.
const hostileID = "\x1b[2J\x1b]0;pwned\x07"

// A dead letter whose event id, subject and reason carry escape sequences,
// C1 controls, a bidi override and invalid UTF-8 is listed with all of it
// shown as visible escapes, in the table and in --json, and replayed the same.
func TestDLQListEscapesAgentText(t *testing.T) {
	r := newRig(t, sim.Config{})
	runService(t, r.cfg)
	ctx := context.Background()

	// Through the worker: a thought it cannot read, under the hostile id.
	bad, _ := json.Marshal(map[string]any{"event_id": hostileID, "agent_id": "a1", "content": map[string]any{}})
	if _, err := r.js.Publish(ctx, consumers.ThoughtSubject("a1"), bad); err != nil {
		t.Fatal(err)
	}
	// Stored as the worker stores one: every text field hostile.
	if err := consumers.StoreLetter(ctx, r.js, consumers.Letter{Stage: pipeline.StageNarrative, Subject: "noesis.thoughts.a2\u202egnp", Seq: 99,
		Attempts: 5, Reason: "bad input: \u009b2J \x1b[31mred\x1b[0m \xff\xfe", Data: []byte("{\"event_id\":\"evt-\u202egnp.exe\",\"agent_id\":\"a2\"}")}); err != nil {
		t.Fatal(err)
	}
	var letters []consumers.Letter
	eventually(t, 20*time.Second, func() bool {
		letters, _ = consumers.ListLetters(ctx, r.js, "")
		return len(letters) >= 2
	}, func() string {
		return fmt.Sprintf("%d dead letters, want the worker's and the stored one", len(letters))
	})
	t.Setenv("NATS_URL", r.ns.ClientURL())

	out, err := runCLI(t, "", "dlq", "list")
	if err != nil {
		t.Fatal(err)
	}
	terminalSafe(t, "dlq list", out)
	for _, want := range []string{`\x1b[2J\x1b]0;pwned\x07`, `evt-\u202egnp.exe`, `noesis.thoughts.a2\u202egnp`, `\u009b2J \x1b[31mred\x1b[0m \xff\xfe`} {
		if !strings.Contains(out, want) {
			t.Errorf("dlq list does not show %s:\n%s", want, out)
		}
	}

	out, err = runCLI(t, "", "dlq", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	terminalSafe(t, "dlq list --json", out)
	var rows []struct {
		EventID string `json:"event_id"`
		Subject string `json:"subject"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	ids := map[string]bool{}
	for _, row := range rows {
		ids[row.EventID] = true
	}
	if !ids[hostileID] || !ids["evt-\u202egnp.exe"] {
		t.Errorf("--json does not give the ids back as they are: %v", ids)
	}

	out, err = runCLI(t, "", "dlq", "replay", "--all")
	if err != nil {
		t.Fatal(err)
	}
	terminalSafe(t, "dlq replay", out)
	if !strings.Contains(out, `\x1b[2J\x1b]0;pwned\x07`) {
		t.Errorf("dlq replay does not show the escaped id:\n%s", out)
	}
}

// noesis status shows a worker's announcement, anyone's who could write to
// the workers bucket, escaped, and an entry that is no announcement as a
// warning, not as a worker.
func TestStatusEscapesWorkerText(t *testing.T) {
	_, _, js := streamsOnly(t, consumers.StreamsConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	reg, err := shared.NewRegistry(ctx, js, shared.BucketConfig{}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	announced := make(chan struct{})
	go func() {
		defer close(announced)
		reg.Announce(ctx, func() shared.WorkerInfo {
			return shared.WorkerInfo{ID: "evil" + hostileID + "\u202e", Version: "v\u009b2J", Tiers: []string{"fast\x1b[31m"}, Started: time.Now().UTC(),
				Breakers: map[string]string{"veritas\x1b[2J": "open"}, Paced: map[string]float64{"sim:\u2066m": 3}}
		})
	}()
	t.Cleanup(func() { cancel(); <-announced })
	kv, err := js.KeyValue(ctx, shared.WorkersBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "phantom", []byte(`{"stream":"NOESIS_THOUGHTS","seq":7}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { ws, _ := shared.ListWorkers(ctx, js); return len(ws) == 1 },
		func() string { return "the worker did not announce itself" })

	out, err := runCLI(t, "", "status")
	if err != nil {
		t.Fatal(err)
	}
	terminalSafe(t, "status", out)
	for _, want := range []string{`evil\x1b[2J\x1b]0;pwned\x07\u202e`, `v\u009b2J`, `fast\x1b[31m`, `veritas\x1b[2J open`, `sim:\u2066m 3/s`, "warning: workers: phantom: not a worker's announcement"} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not show %s:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "phantom"); n != 1 {
		t.Errorf("phantom appears %d times, want once, in the warning:\n%s", n, out)
	}

	out, err = runCLI(t, "", "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	terminalSafe(t, "status --json", out)
	var st Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(st.Workers) != 1 || st.Workers[0].ID != "evil"+hostileID+"\u202e" || len(st.SkippedWorkers) != 1 {
		t.Errorf("workers %+v, skipped %q: want the one worker as announced and the phantom skipped", st.Workers, st.SkippedWorkers)
	}
}

// terminalSafe fails the test if out holds anything a terminal would act
// on: a control character other than a newline, DEL, a C1 control, a bidi
// control, a line or paragraph separator, or invalid UTF-8.
func terminalSafe(t *testing.T, what, out string) {
	t.Helper()
	for i := 0; i < len(out); {
		r, n := utf8.DecodeRuneInString(out[i:])
		bidi := r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x061c
		if r == utf8.RuneError && n == 1 || r < 0x20 && r != '\n' || r >= 0x7f && r <= 0x9f || bidi || r == 0x2028 || r == 0x2029 {
			t.Errorf("%s: %q at byte %d of its output:\n%q", what, out[i:i+n], i, out)
			return
		}
		i += n
	}
}
