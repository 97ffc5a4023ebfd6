package bench

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// The labelled thoughts `bench tribunal` judges: what a person would decide
// for each (pass, review, fail or capital).
//
//go:embed corpus/thoughts.jsonl
var tribunalCorpus []byte

// LabelledThought is one line of the corpus.
type LabelledThought struct {
	Label  pipeline.Decision `json:"label"`
	Task   string            `json:"task"`
	Action string            `json:"action"`
}

// LabelledCorpus returns the corpus `bench tribunal` judges by default.
func LabelledCorpus() ([]LabelledThought, error) { return readCorpus(tribunalCorpus) }

// readCorpus reads a JSON-lines corpus of labelled thoughts.
func readCorpus(data []byte) ([]LabelledThought, error) {
	var out []LabelledThought
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var lt LabelledThought
		if err := json.Unmarshal([]byte(line), &lt); err != nil {
			return nil, fmt.Errorf("corpus line %d: %w", n, err)
		}
		switch lt.Label {
		case pipeline.DecisionPass, pipeline.DecisionReview, pipeline.DecisionFail, pipeline.DecisionCapital:
		default:
			return nil, fmt.Errorf("corpus line %d: label %q: want pass, review, fail or capital", n, lt.Label)
		}
		if lt.Task == "" {
			return nil, fmt.Errorf("corpus line %d: no task", n)
		}
		out = append(out, lt)
	}
	return out, sc.Err()
}

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
	type sent struct {
		label pipeline.Decision
		task  string
		at    time.Time
	}
	n := len(corpus) * max(repeat, 1)
	thoughts := make(map[string]*sent, n)
	var mu sync.Mutex
	verdicts := map[string]pipeline.Verdict{}
	arrived := map[string]time.Time{}
	done := make(chan struct{})
	sub, err := nc.Subscribe(consumers.OutputSubject(pipeline.StageTribunal, agent), func(m *nats.Msg) {
		var v pipeline.Verdict
		if json.Unmarshal(m.Data, &v) != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if _, seen := verdicts[v.EventID]; seen {
			return
		}
		verdicts[v.EventID], arrived[v.EventID] = v, time.Now()
		if len(verdicts) == n {
			close(done)
		}
	})
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	start := time.Now()
	for i := 0; i < n; i++ {
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
		mu.Lock()
		thoughts[id] = &sent{label: lt.Label, task: task, at: time.Now()}
		mu.Unlock()
		if _, err := js.PublishAsync(consumers.ThoughtSubject(agent), data, jetstream.WithMsgID(id)); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-done:
	case <-time.After(wait):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	f := &TribunalFigures{Thoughts: n, OfferedRate: rate, Verdicts: len(verdicts), AbstentionsByKind: map[string]int{},
		AbstentionsByReason: map[string]int{}, Decisions: map[string]int{}, Simulated: s != nil, Latency: map[string]float64{}}
	var intents map[string]sim.Intent
	if s != nil {
		st := s.Stats()
		intents = st.Intents
		f.UpstreamCalls, f.RateLimited, f.EarlyRetries, f.MaxCallsPerRequest = st.Requests, st.Faults["429"], st.EarlyRetries, st.MaxCallsPerRequest
	}
	var e2e, trib, slowest, overhead []float64
	last := start
	for id, v := range verdicts {
		th := thoughts[id]
		f.Decisions[string(v.Decision)]++
		e2e = append(e2e, float64(arrived[id].Sub(th.at).Microseconds())/1000)
		last = later(last, arrived[id])
		slow := 0.0
		for _, j := range v.Judges {
			slow = max(slow, float64(j.LatencyMS))
			if j.Abstained {
				f.AbstentionsByKind[j.AbstainKind]++
				f.AbstentionsByReason[j.AbstainKind+": "+reasonClass(j.AbstainReason)]++
			}
		}
		trib = append(trib, float64(v.LatencyMS))
		slowest = append(slowest, slow)
		if slow > 0 {
			overhead = append(overhead, float64(v.LatencyMS)/slow)
		}
		if v.AbstentionCount == 0 {
			f.Complete++
			if v.Decision == th.label {
				f.Right++
			} else {
				f.Wrong = append(f.Wrong, fmt.Sprintf("%s: %s, labelled %s", cli.Clip(th.task, 60), v.Decision, th.label))
			}
		}
		if intents == nil {
			continue
		}
		meant := make([]pipeline.JudgeVote, len(v.Judges))
		clear := true
		for i, j := range v.Judges {
			in, ok := intents[sim.IntentKey(simCaller(j.Name), th.task)]
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
			meant[i] = pipeline.JudgeVote{Name: j.Name, Weight: j.Weight, Verdict: pipeline.Vote(in.Verdict), Confidence: in.Confidence,
				Offense: pipeline.Offense(in.Offense), Abstained: in.Verdict == string(pipeline.VoteAbstain)}
		}
		if clear && v.Decision != pipeline.DecisionUnavailable {
			f.DecisionsMeant++
			if d, _ := pipeline.Decide(meant); d == v.Decision {
				f.DecisionsAsMeant++
			}
		}
	}
	f.Seconds = last.Sub(start).Seconds()
	f.VerdictP50ms, f.VerdictP99ms = percentile(e2e, 50), percentile(e2e, 99)
	f.TribunalP50ms, f.TribunalP99ms = percentile(trib, 50), percentile(trib, 99)
	f.SlowestJudgeP50ms, f.SlowestJudgeP99ms = percentile(slowest, 50), percentile(slowest, 99)
	f.OverheadP50 = percentile(overhead, 50)
	f.Latency = map[string]float64{"verdict_p50": f.VerdictP50ms, "verdict_p99": f.VerdictP99ms, "tribunal_p50": f.TribunalP50ms,
		"tribunal_p99": f.TribunalP99ms, "slowest_judge_p50": f.SlowestJudgeP50ms, "slowest_judge_p99": f.SlowestJudgeP99ms}
	return f, nil
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

func writeTribunalFigures(w io.Writer, f *TribunalFigures) error {
	fmt.Fprintf(w, "tribunal: %d thoughts offered at %s, %d verdicts in %.1f s\n", f.Thoughts, rateText(f.OfferedRate), f.Verdicts, f.Seconds)
	t := cli.Table(w)
	t.Header([]string{"measure", "count", "of", "share"})
	row := func(name string, a, b int) {
		share := "-"
		if b > 0 {
			share = fmt.Sprintf("%.2f %%", 100*float64(a)/float64(b))
		}
		_ = t.Append([]string{name, strconv.Itoa(a), strconv.Itoa(b), share})
	}
	row("verdicts received", f.Verdicts, f.Thoughts)
	row("complete verdicts (every judge voted)", f.Complete, f.Verdicts)
	row("decisions right (complete verdicts)", f.Right, f.Complete)
	if f.Simulated {
		row("judge answers read as meant", f.AnswersRead, f.Answers)
		row("decisions as the judges meant", f.DecisionsAsMeant, f.DecisionsMeant)
	}
	if err := t.Render(); err != nil {
		return err
	}
	lt := cli.Table(w)
	lt.Header([]string{"latency", "p50 ms", "p99 ms"})
	_ = lt.Append([]string{"publish to verdict", f1(f.VerdictP50ms), f1(f.VerdictP99ms)})
	_ = lt.Append([]string{"tribunal", f1(f.TribunalP50ms), f1(f.TribunalP99ms)})
	_ = lt.Append([]string{"its slowest judge", f1(f.SlowestJudgeP50ms), f1(f.SlowestJudgeP99ms)})
	if err := lt.Render(); err != nil {
		return err
	}
	fmt.Fprintf(w, "tribunal time over its slowest judge's, p50: %.3f\n", f.OverheadP50)
	fmt.Fprintf(w, "decisions: %s\n", sortedCounts(f.Decisions))
	for _, w2 := range f.Wrong {
		fmt.Fprintf(w, "  not as labelled: %s\n", w2)
	}
	fmt.Fprintf(w, "abstentions: %s\n", sortedCounts(f.AbstentionsByReason))
	if f.UpstreamCalls > 0 {
		fmt.Fprintf(w, "upstream calls: %d (%.2f per thought)\n", f.UpstreamCalls, float64(f.UpstreamCalls)/float64(max(f.Thoughts, 1)))
	}
	if f.RateLimited > 0 {
		fmt.Fprintf(w, "rate limited: %d calls answered 429; %d calls sooner than their Retry-After; at most %d calls for one judge's question\n",
			f.RateLimited, f.EarlyRetries, f.MaxCallsPerRequest)
	}
	return nil
}

func sortedCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func newBenchTribunalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tribunal",
		Short: "Judge a labelled corpus of thoughts and measure the verdicts",
		Long: `Publish a labelled corpus of thoughts (pass, review, fail, capital; the built-in
one, or --corpus FILE in the same JSON lines) through the whole pipeline and
measure: decisions right, complete verdicts, abstentions by kind and reason,
latency, upstream calls. Self-contained: an embedded NATS server and one worker
in this process, with the configured models: the simulator unless a provider
is set (LLM_PROVIDER, NEBIUS_API_KEY). With the simulator it also counts the
judge answers read as the simulated judge meant them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cli.LoadConfig(cmd)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			repeat, _ := f.GetInt("repeat")
			rate, _ := f.GetFloat64("rate")
			path, _ := f.GetString("corpus")
			format, _ := f.GetString("format")
			storm, _ := f.GetInt("rate-limit-first")
			data := tribunalCorpus
			if path != "" {
				if data, err = os.ReadFile(path); err != nil {
					return err
				}
			}
			corpus, err := readCorpus(data)
			if err != nil {
				return err
			}
			res, err := benchTribunal(cmd.Context(), cfg, corpus, repeat, rate, storm, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return writeFigures(cmd.OutOrStdout(), format, res, writeTribunalFigures)
		},
	}
	f := cmd.Flags()
	f.Int("repeat", 1, "judge each corpus thought this many times (each copy a distinct thought)")
	f.Float64("rate", 0, "thoughts per second to offer (0: all at once)")
	f.String("corpus", "", "a JSON-lines file of labelled thoughts instead of the built-in corpus")
	f.String("format", "table", "table or json")
	f.Int("rate-limit-first", 0, "with the simulator: answer the first N calls of every judge's question 429 (Retry-After 1 s), a rate-limit storm")
	return cmd
}

// benchTribunal runs the corpus through an embedded NATS server and a worker
// in this process, with cfg's models (and the simulator, started here, when
// cfg uses it).
func benchTribunal(ctx context.Context, cfg config.Config, corpus []LabelledThought, repeat int, rate float64, storm int, progress io.Writer) (*TribunalFigures, error) {
	dir, err := os.MkdirTemp("", "noesis-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg.NATSURL, cfg.NATSListen, cfg.DataDir = "", "127.0.0.1:0", dir
	cfg.Tiers = []string{"reasoning"}
	cfg.LogLevel = "error"
	if cfg.Provider == "auto" && cfg.ResolvedProvider() == "sim" {
		cfg.Provider = "sim" // the bench's own embedded NATS: simulating is what was asked for
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	stack, err := startBenchStack(ctx, cfg, stackOptions{client: "noesis-bench-tribunal", inProcess: true, workers: 1, tune: func(sc *sim.Config) { sc.RateLimitFirst = storm }}, progress)
	if err != nil {
		return nil, err
	}
	defer stack.stop()
	nc, js := stack.nc, stack.js
	var s *sim.Server
	if cfg.UsesSim() {
		s = stack.sim
	}
	n := len(corpus) * max(repeat, 1)
	fmt.Fprintf(progress, "bench tribunal: %d thoughts, rate %s, models %s\n", n, rateText(rate), cfg.ResolvedProvider())
	wait := 2*cfg.TribunalDeadline + time.Duration(float64(n)/max(rate, 1)*float64(time.Second))
	return TribunalRun(ctx, nc, js, corpus, repeat, rate, wait, s)
}
