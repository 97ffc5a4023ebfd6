package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// TribunalFigures is what `bench tribunal` measures.
type TribunalFigures struct {
	Thoughts    int     `json:"thoughts"`
	OfferedRate float64 `json:"offered_rate"`
	Verdicts    int     `json:"verdicts"`
	// Complete verdicts had every judge's vote.
	Complete int `json:"complete"`
	// Right counts complete verdicts whose decision is the corpus label;
	// Wrong lists the others.
	Right int      `json:"right"`
	Wrong []string `json:"wrong,omitempty"`
	// Abstentions by kind (answer, operational) and by kind and reason.
	AbstentionsByKind   map[string]int `json:"abstentions_by_kind"`
	AbstentionsByReason map[string]int `json:"abstentions_by_reason"`
	Decisions           map[string]int `json:"decisions"`
	// With the simulator: judge answers read as the simulated judge meant
	// them (a clear verdict read exactly; an ambiguous or cut-off answer
	// abstained), and decisions that follow the tribunal's rules from what
	// the judges meant.
	Simulated        bool `json:"simulated"`
	AnswersRead      int  `json:"answers_read_as_meant"`
	Answers          int  `json:"answers"`
	DecisionsAsMeant int  `json:"decisions_as_meant"`
	DecisionsMeant   int  `json:"decisions_meant"`
	// Latencies in ms: publish to verdict; the tribunal's own time; its
	// slowest judge's; and the tribunal's time over its slowest judge's.
	VerdictP50ms, VerdictP99ms           float64            `json:"-"`
	TribunalP50ms, TribunalP99ms         float64            `json:"-"`
	SlowestJudgeP50ms, SlowestJudgeP99ms float64            `json:"-"`
	OverheadP50                          float64            `json:"overhead_p50"`
	Latency                              map[string]float64 `json:"latency_ms"`
	UpstreamCalls                        int64              `json:"upstream_calls"`
	// With the simulator: calls answered 429, calls that came back sooner
	// than their Retry-After, and the most calls one distinct request made.
	RateLimited        int64   `json:"rate_limited"`
	EarlyRetries       int64   `json:"early_retries"`
	MaxCallsPerRequest int64   `json:"max_calls_per_request"`
	Seconds            float64 `json:"seconds"`
}

// TribunalRun publishes the corpus (repeat times, each copy a distinct
// thought) as agent on js at rate, collects the verdicts on nc, and measures
// them. s, when not nil, is the simulator the judges are asked, whose
// intents say what each judge meant.
func TribunalRun(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, corpus []LabelledThought, repeat int, rate float64, wait time.Duration, s *sim.Server) (*TribunalFigures, error) {
	const agent = "bench-tribunal"
	in := newVerdictInbox(len(corpus) * max(repeat, 1))
	sub, err := nc.Subscribe(consumers.OutputSubject(pipeline.StageTribunal, agent), in.receive)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	start := time.Now()
	if err := in.publish(js, agent, corpus, rate, start); err != nil {
		return nil, err
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-in.done:
	case <-time.After(wait):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return in.figures(rate, start, s), nil
}

// tribunalSent is one thought TribunalRun published.
type tribunalSent struct {
	label pipeline.Decision
	task  string
	at    time.Time
}

// verdictInbox holds the thoughts TribunalRun sent and the first verdict of
// each as it arrives; done closes once every thought has one. Safe for
// concurrent use.
type verdictInbox struct {
	mu       sync.Mutex
	n        int
	sent     map[string]*tribunalSent
	verdicts map[string]pipeline.Verdict
	arrived  map[string]time.Time
	done     chan struct{}
}

func newVerdictInbox(n int) *verdictInbox {
	return &verdictInbox{n: n, sent: make(map[string]*tribunalSent, n), verdicts: map[string]pipeline.Verdict{},
		arrived: map[string]time.Time{}, done: make(chan struct{})}
}

// receive keeps a verdict the first time its thought's verdict arrives.
func (in *verdictInbox) receive(m *nats.Msg) {
	var v pipeline.Verdict
	if json.Unmarshal(m.Data, &v) != nil {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, seen := in.verdicts[v.EventID]; seen {
		return
	}
	in.verdicts[v.EventID], in.arrived[v.EventID] = v, time.Now()
	if len(in.verdicts) == in.n {
		close(in.done)
	}
}

// publish sends the n thoughts, the corpus over and over, as agent at rate
// (0: all at once) from start, noting when each was sent.
func (in *verdictInbox) publish(js jetstream.JetStream, agent string, corpus []LabelledThought, rate float64, start time.Time) error {
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := 0; i < in.n; i++ {
		lt := corpus[i%len(corpus)]
		task := lt.Task
		if k := i / len(corpus); k > 0 {
			task = fmt.Sprintf("%s (case %d)", task, k) // a distinct thought: no cache hit
		}
		id := fmt.Sprintf("tb-%s-%d", run, i)
		th := pipeline.Thought{EventID: id, AgentID: agent, Content: pipeline.Content{UserInput: task, Depth: 2}, Action: lt.Action,
			Stages: []pipeline.Stage{pipeline.StageTribunal}}
		data, _ := json.Marshal(th)
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		in.mu.Lock()
		in.sent[id] = &tribunalSent{label: lt.Label, task: task, at: time.Now()}
		in.mu.Unlock()
		if _, err := js.PublishAsync(consumers.ThoughtSubject(agent), data, jetstream.WithMsgID(id)); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	return nil
}

// figures measures the verdicts received so far.
func (in *verdictInbox) figures(rate float64, start time.Time, s *sim.Server) *TribunalFigures {
	in.mu.Lock()
	defer in.mu.Unlock()
	f := &TribunalFigures{Thoughts: in.n, OfferedRate: rate, Verdicts: len(in.verdicts), AbstentionsByKind: map[string]int{},
		AbstentionsByReason: map[string]int{}, Decisions: map[string]int{}, Simulated: s != nil, Latency: map[string]float64{}}
	var intents map[string]sim.Intent
	if s != nil {
		st := s.Stats()
		intents = st.Intents
		f.UpstreamCalls, f.RateLimited, f.EarlyRetries, f.MaxCallsPerRequest = st.Requests, st.Faults["429"], st.EarlyRetries, st.MaxCallsPerRequest
	}
	var e2e, trib, slowest, overhead []float64
	last := start
	for id, v := range in.verdicts {
		th := in.sent[id]
		e2e = append(e2e, float64(in.arrived[id].Sub(th.at).Microseconds())/1000)
		last = later(last, in.arrived[id])
		slow := f.count(v, th)
		trib = append(trib, float64(v.LatencyMS))
		slowest = append(slowest, slow)
		if slow > 0 {
			overhead = append(overhead, float64(v.LatencyMS)/slow)
		}
		if intents != nil {
			f.readAsMeant(v, th.task, intents)
		}
	}
	f.Seconds = last.Sub(start).Seconds()
	f.VerdictP50ms, f.VerdictP99ms = percentile(e2e, 50), percentile(e2e, 99)
	f.TribunalP50ms, f.TribunalP99ms = percentile(trib, 50), percentile(trib, 99)
	f.SlowestJudgeP50ms, f.SlowestJudgeP99ms = percentile(slowest, 50), percentile(slowest, 99)
	f.OverheadP50 = percentile(overhead, 50)
	f.Latency = map[string]float64{"verdict_p50": f.VerdictP50ms, "verdict_p99": f.VerdictP99ms, "tribunal_p50": f.TribunalP50ms,
		"tribunal_p99": f.TribunalP99ms, "slowest_judge_p50": f.SlowestJudgeP50ms, "slowest_judge_p99": f.SlowestJudgeP99ms}
	return f
}

// count counts v's decision, abstentions and rightness against th's label,
// and returns its slowest judge's latency in ms.
func (f *TribunalFigures) count(v pipeline.Verdict, th *tribunalSent) float64 {
	f.Decisions[string(v.Decision)]++
	slow := 0.0
	for _, j := range v.Judges {
		slow = max(slow, float64(j.LatencyMS))
		if j.Abstained {
			f.AbstentionsByKind[j.AbstainKind]++
			f.AbstentionsByReason[j.AbstainKind+": "+reasonClass(j.AbstainReason)]++
		}
	}
	if v.AbstentionCount == 0 {
		f.Complete++
		if v.Decision == th.label {
			f.Right++
		} else {
			f.Wrong = append(f.Wrong, fmt.Sprintf("%s: %s, labelled %s", cli.Clip(th.task, 60), v.Decision, th.label))
		}
	}
	return slow
}

// readAsMeant counts the judges' answers read as the simulated judges meant
// them (intents, by judge and task), and whether the decision is the one
// the origin's rules make of what they meant (originDecision: the rules
// written again from the origin's own words, not pipeline.Decide, so a fault
// in Decide shows here instead of agreeing with itself).
func (f *TribunalFigures) readAsMeant(v pipeline.Verdict, task string, intents map[string]sim.Intent) {
	meant := make([]meantVote, 0, len(v.Judges))
	clear := true
	for _, j := range v.Judges {
		in, ok := intents[sim.IntentKey(simCaller(j.Name), task)]
		if !ok {
			clear = false
			continue
		}
		f.Answers++
		if j.AbstainKind == pipeline.AbstainOperational {
			clear = false
			continue // not an answer: counted under abstentions
		}
		if in.Verdict == "" { // ambiguous or cut off: abstaining is reading it right
			clear = false
			if j.Abstained {
				f.AnswersRead++
			}
			continue
		}
		if string(j.Verdict) == in.Verdict && j.Confidence == in.Confidence && string(j.Offense) == in.Offense {
			f.AnswersRead++
		}
		meant = append(meant, meantVote{weight: j.Weight, intent: in})
	}
	if clear && v.Decision != pipeline.DecisionUnavailable {
		f.DecisionsMeant++
		if originDecision(meant) == string(v.Decision) {
			f.DecisionsAsMeant++
		}
	}
}

// meantVote is what one simulated judge meant, with its weight.
type meantVote struct {
	weight float64
	intent sim.Intent
}

// originDecision is the tribunal's rule as the origin states it
// (docs/judges.md): a judge that does not abstain votes its confidence when
// it passes and 0 otherwise; the consensus is those votes' weighted mean
// over the judges present; a capital offense from a judge present vetoes;
// fewer than two judges present is a review; else 0.70 passes, 0.50 goes to
// review, and below fails.
func originDecision(votes []meantVote) string {
	var score, weight float64
	present := 0
	for _, v := range votes {
		if v.intent.Verdict == "ABSTAIN" {
			continue
		}
		if v.intent.Offense == "capital" {
			return "capital"
		}
		present++
		weight += v.weight
		if v.intent.Verdict == "PASS" {
			score += v.weight * v.intent.Confidence
		}
	}
	switch {
	case present < 2:
		return "review"
	case score >= 0.70*weight:
		return "pass"
	case score >= 0.50*weight:
		return "review"
	}
	return "fail"
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// simCaller is how the simulator names a judge.
func simCaller(judge string) string {
	return strings.ToLower(strings.ReplaceAll(judge, "Ē", "E"))
}

// reasonClass shortens an abstention reason to its kind, for counting.
func reasonClass(reason string) string {
	for _, p := range []string{"ambiguous verdict", "the answer states", "no verdict", "the answer was cut off", "PASS with no confidence",
		"no answer within", "tribunal deadline", "circuit breaker open", "model call failed", "the judge abstained", "confidence", "offense level", "verdict"} {
		if strings.Contains(reason, p) {
			return p
		}
	}
	return cli.Clip(reason, 40)
}
