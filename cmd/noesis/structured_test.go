package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/breaker"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
)

// structuredRun is a worker against a simulator that treats response_format
// as format says, and the verdicts of the thoughts it is sent.
type structuredRun struct {
	t   *testing.T
	s   *sim.Server
	svc interface {
		Chain() *router.Router
		MetricsAddr() string
	}
	got  *collector
	sent int
	send func(n int)
	cut  map[string]float64 // each judge's answers the simulator cut off at max_tokens
}

func startStructured(t *testing.T, sc sim.Config) *structuredRun {
	t.Helper()
	w := newRig(t, sc)
	w.cfg.MetricsAddr = "127.0.0.1:0"
	r := &structuredRun{t: t, s: w.sim, svc: runService(t, w.cfg), got: collect(t, w.nc)}
	r.send = func(n int) {
		for i := r.sent; i < r.sent+n; i++ {
			th := thought(i, fmt.Sprintf("thought %d: I will tidy the archive of project %d", i, i))
			th.Stages = []pipeline.Stage{pipeline.StageTribunal}
			publishThought(t, w.js, th)
		}
		r.sent += n
		r.got.waitFor(t, 60*time.Second, map[string]int{"verdicts": r.sent})
	}
	return r
}

// answers waits until /metrics counts want answers of each judge in format,
// less the judge's answers cut off at max_tokens (r.cut, filled by judged)
// when want is not 0.
func (r *structuredRun) answers(format string, want float64) {
	r.t.Helper()
	var text string
	all := want
	for _, judge := range []string{"VERITAS", "SOPHIA", "DIKĒ"} {
		if want = all; want > 0 {
			want -= r.cut[judge]
		}
		labels := map[string]string{"judge": judge, "format": format}
		eventually(r.t, 10*time.Second, func() bool {
			_, text = scrape(r.t, "http://"+r.svc.MetricsAddr()+"/metrics")
			return metricValue(text, "noesis_judge_answers_total", labels) == want
		}, func() string {
			return fmt.Sprintf("noesis_judge_answers_total%v = %v, want %v", labels, metricValue(text, "noesis_judge_answers_total", labels), want)
		})
	}
}

// targetStructured is the judges' target's noesis_target_structured.
func (r *structuredRun) targetStructured() float64 {
	_, text := scrape(r.t, "http://"+r.svc.MetricsAddr()+"/metrics")
	return metricValue(text, "noesis_target_structured", map[string]string{"target": "sim:" + router.DefaultReasoningModel})
}

// verdicts returns every verdict published so far.
func (r *structuredRun) verdicts() []pipeline.Verdict {
	r.t.Helper()
	var out []pipeline.Verdict
	for _, m := range r.got.messages("verdicts") {
		var v pipeline.Verdict
		if err := json.Unmarshal(m.Data, &v); err != nil {
			r.t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// noDeadLetterNorOpenBreaker fails on a dead letter or a breaker not closed.
func (r *structuredRun) noDeadLetterNorOpenBreaker() {
	r.t.Helper()
	if n := r.got.distinct("dlq.tribunal"); n != 0 {
		r.t.Errorf("%d thoughts dead-lettered", n)
	}
	for target, st := range r.svc.Chain().BreakerStates() {
		if st != string(breaker.Closed) {
			r.t.Errorf("target %s's breaker is %s", target, st)
		}
	}
}

// intent is what the simulated judge meant, last time it was asked.
func (r *structuredRun) intent(v pipeline.Verdict, j pipeline.JudgeVote) sim.Intent {
	caller := strings.ToLower(strings.ReplaceAll(j.Name, "Ē", "E"))
	var i int
	if _, err := fmt.Sscanf(v.EventID, "evt-%d", &i); err != nil {
		r.t.Fatalf("event id %q", v.EventID)
	}
	return r.s.Stats().Intents[sim.IntentKey(caller, fmt.Sprintf("thought %d: I will tidy the archive of project %d", i, i))]
}

// judged checks each judge's vote against what the simulated judge meant.
// An answer the simulator cut off at max_tokens (a long thinking, drawn
// now and then) is no answer: the judge abstains, saying so, and the cut
// answer is counted in r.cut.
func (r *structuredRun) judged(v pipeline.Verdict, j pipeline.JudgeVote) {
	r.t.Helper()
	in := r.intent(v, j)
	if in.Truncated {
		if r.cut == nil {
			r.cut = map[string]float64{}
		}
		r.cut[j.Name]++
		if !j.Abstained || !strings.Contains(j.AbstainReason, "cut off at max_tokens") {
			r.t.Errorf("%s %s: cut off at max_tokens by the simulator, voted %s (abstained %v: %q)", v.EventID, j.Name, j.Verdict, j.Abstained, j.AbstainReason)
		}
		return
	}
	if in.Verdict == "" || j.Abstained || string(j.Verdict) != in.Verdict || math.Abs(j.Confidence-in.Confidence) > 0.005 || string(j.Offense) != in.Offense {
		r.t.Errorf("%s %s: voted %s %.2f %s (abstained %v), meant %+v", v.EventID, j.Name, j.Verdict, j.Confidence, j.Offense, j.Abstained, in)
	}
}

// With a provider that honours the schema, every judge answers through it,
// as it meant, and none is asked again: three calls a thought.
func TestEveryJudgeAnswersThroughTheSchema(t *testing.T) {
	r := startStructured(t, sim.Config{})
	const n = 200
	r.send(n)
	for _, v := range r.verdicts() {
		for _, j := range v.Judges {
			if (!j.Structured || j.AskedAgain) && !r.intent(v, j).Truncated {
				t.Errorf("%s %s: structured %v, asked again %v", v.EventID, j.Name, j.Structured, j.AskedAgain)
			}
			r.judged(v, j)
		}
	}
	if st := r.s.Stats(); st.Structured != 3*n || st.Requests != 3*n {
		t.Errorf("%d requests, %d answered in the schema; want %d and %d", st.Requests, st.Structured, 3*n, 3*n)
	}
	r.answers("structured", n)
	r.answers("text", 0)
	if g := r.targetStructured(); g != 1 {
		t.Errorf("noesis_target_structured %v, want 1", g)
	}
	r.noDeadLetterNorOpenBreaker()
}

// A provider that refuses response_format: the target is remembered after
// its first refusals and asked in text from then on; every verdict is read
// from text, none dead-lettered, no breaker opened.
func TestATargetThatRefusesTheSchemaIsAskedInTextFromThenOn(t *testing.T) {
	r := startStructured(t, sim.Config{ResponseFormat: sim.FormatRefuse, Shape: "tagged-lines"})
	r.send(100)
	first := r.s.Stats().Faults["response_format"]
	if first < 1 {
		t.Fatal("no request carried the schema")
	}
	r.send(100)
	if again := r.s.Stats().Faults["response_format"]; again != first {
		t.Errorf("%d more refusals once the target was known to refuse", again-first)
	}
	for _, v := range r.verdicts() {
		for _, j := range v.Judges {
			if j.Structured || j.AskedAgain {
				t.Errorf("%s %s: structured %v, asked again %v", v.EventID, j.Name, j.Structured, j.AskedAgain)
			}
			r.judged(v, j)
		}
	}
	if st := r.svc.Chain().Structured()["sim:"+router.DefaultReasoningModel]; st != "refused" {
		t.Errorf("the judges' target's structured answers are %q, want refused", st)
	}
	r.answers("text", 200)
	r.answers("structured", 0)
	if g := r.targetStructured(); g != 0 {
		t.Errorf("noesis_target_structured %v, want 0", g)
	}
	r.noDeadLetterNorOpenBreaker()
}

// A provider that takes response_format and ignores it: the text answers,
// in every shape judges use, are read as text. (A model that happens to
// answer the bare object in text is read strictly, as if it had been held
// to the schema: outside the provider, the two cannot be told apart.)
func TestATargetThatIgnoresTheSchemaIsReadAsText(t *testing.T) {
	r := startStructured(t, sim.Config{ResponseFormat: sim.FormatIgnore})
	r.send(100)
	for _, v := range r.verdicts() {
		for _, j := range v.Judges {
			if j.Structured && r.intent(v, j).Shape != "bare-json" {
				t.Errorf("%s %s: read as structured from a text answer (%s)", v.EventID, j.Name, r.intent(v, j).Shape)
			}
			if !j.Abstained || j.AbstainKind != pipeline.AbstainAnswer {
				r.judged(v, j)
			}
		}
	}
	if st := r.s.Stats(); st.Structured != 0 {
		t.Errorf("the simulator wrote %d answers in a schema", st.Structured)
	}
	r.noDeadLetterNorOpenBreaker()
}
