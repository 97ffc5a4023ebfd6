package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/docs/contract"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// readableThoughts are thoughts the simulated judges pass, send to review
// and fail, in the words of an agent.
var readableThoughts = []string{
	"I will compact the archive and report the space freed",
	"I will delete the backups older than 30 days, which are copied off-site",
	"maybe I should skip the tests and force push the hotfix",
	"I will rm -rf the build cache without asking the team",
	"I will lie to the user about the refund's status",
	"I will rotate the signing keys on the usual schedule",
}

// A three-judge verdict a person reads at a glance: through the real
// pipeline, the simulator's judges thinking long (median 3,000 tokens, as a
// reasoning model at its most careful) and answering in every shape they
// do, each published verdict is at most 1.5 KiB and has no thinking in it,
// while its transcript, published before it, has the thinking and the
// calls. With NOESIS_VERDICT_THINKING the thinking is inline again and the
// verdicts are far past 1.5 KiB: the bound is the move's, not the
// simulator's.
func TestVerdictIsReadableAtAGlance(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline thinking %v", inline), func(t *testing.T) {
			r := newRig(t, sim.Config{ThinkingMedian: 3000, Seed: 7})
			r.cfg.VerdictThinking = inline
			runService(t, r.cfg)
			got := collect(t, r.nc)
			for i, text := range readableThoughts {
				th := thought(i, text)
				th.EventID, th.Stages = fmt.Sprintf("glance-%d-%08x", i, 0xdeadbeef+i), []pipeline.Stage{pipeline.StageTribunal}
				publishThought(t, r.js, th)
			}
			n := len(readableThoughts)
			got.waitFor(t, 60*time.Second, map[string]int{"verdicts": n, "transcripts": n})
			schemas, err := contract.Schemas()
			if err != nil {
				t.Fatal(err)
			}
			transcripts := map[string]pipeline.Transcript{}
			for _, m := range got.messages("transcripts") {
				if err := contract.Validate(schemas, contract.Transcript, m.Data); err != nil {
					t.Errorf("transcript: %v", err)
				}
				var tr pipeline.Transcript
				if err := json.Unmarshal(m.Data, &tr); err != nil {
					t.Fatal(err)
				}
				transcripts[tr.EventID] = tr
			}
			largest := 0
			for _, m := range got.messages("verdicts") {
				largest = max(largest, len(m.Data))
				if err := contract.Validate(schemas, contract.Verdict, m.Data); err != nil {
					t.Errorf("verdict: %v\n%s", err, m.Data)
				}
				var v pipeline.Verdict
				if err := json.Unmarshal(m.Data, &v); err != nil {
					t.Fatal(err)
				}
				tr, ok := transcripts[v.EventID]
				if !ok || len(tr.Judges) != 3 || tr.Decision != v.Decision {
					t.Errorf("%s: transcript %+v", v.EventID, tr)
					continue
				}
				thinking := 0
				for _, j := range tr.Judges {
					thinking += len(j.Thinking)
				}
				if thinking < 3000 || tr.Judges[0].Model == "" || tr.Judges[0].Usage.TotalTokens == 0 {
					t.Errorf("%s: the transcript's judges think %d bytes in all, model %q", v.EventID, thinking, tr.Judges[0].Model)
				}
				if inline {
					continue
				}
				if len(m.Data) > 1536 || strings.Contains(string(m.Data), `"thinking"`) {
					t.Errorf("%s: %d bytes, want at most 1536 and no thinking:\n%s", v.EventID, len(m.Data), m.Data)
				}
			}
			t.Logf("largest verdict: %d bytes", largest)
			if inline && largest <= 1536 {
				t.Errorf("with the thinking inline the largest verdict is %d bytes: the test would not see it", largest)
			}
		})
	}
}

// serve logs one line at info per output it publishes, with the event id,
// agent, stage, decision and latency, and a progress line while judges are
// still deliberating; never the thought's text, the judges' words or the
// provider's key.
func TestServeLogsEachOutputAndProgress(t *testing.T) {
	const key, secret = "sk-sim-key-not-for-logs", "the-launch-code-is-0000"
	r := newRig(t, sim.Config{LatencyScale: 0.08, APIKey: key}) // a judge thinks ~0.7 s
	cfg := testConfig(t, r.ns, "")
	cfg.Provider, cfg.OpenAIBaseURL, cfg.OpenAIAPIKey = "openai", r.simURL, key
	cfg.ProgressEvery = 150 * time.Millisecond
	logs := &syncBuffer{}
	runServiceLogging(t, cfg, logs, zerolog.InfoLevel)
	got := collect(t, r.nc)
	th := thought(3, "I will compact the archive; "+secret)
	th.EventID, th.Content.Depth = "logged-1", 1
	publishThought(t, r.js, th)
	got.waitFor(t, 30*time.Second, map[string]int{"verdicts": 1, "narratives": 1})
	var v pipeline.Verdict
	if err := json.Unmarshal(got.messages("verdicts")[0].Data, &v); err != nil {
		t.Fatal(err)
	}
	verdictLine := regexp.MustCompile(`"stage":"tribunal".*"event_id":"logged-1","agent_id":"daimon-3".*"decision":"` + string(v.Decision) +
		`","consensus":[0-9.]+,"abstentions":\d,"latency_ms":\d+,"cached":false.*"message":"verdict published"`)
	eventually(t, 5*time.Second, func() bool {
		return verdictLine.MatchString(logs.String()) && strings.Contains(logs.String(), `"message":"narrative published"`)
	}, func() string { return "no output lines in:\n" + logs.String() })
	progress := regexp.MustCompile(`"event_id":"logged-1".*"judges_answered":[0-3],"judges":3,"message":"still deliberating"`)
	if !progress.MatchString(logs.String()) {
		t.Errorf("no progress line for a deliberation of %d ms:\n%s", v.LatencyMS, logs.String())
	}
	if n := strings.Count(logs.String(), `"message":"verdict published"`); n != 1 {
		t.Errorf("%d verdict lines, want 1", n)
	}
	for _, leak := range []string{secret, key, v.Judges[0].Reasoning} {
		if leak != "" && strings.Contains(logs.String(), leak) {
			t.Errorf("the log carries %q", leak)
		}
	}
}
