package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/router/sim"
)

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
	var (
		repeat, storm int
		rate          float64
		path          string
	)
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
		RunE: runFigures(func(ctx context.Context, cfg config.Config, progress io.Writer) (*TribunalFigures, error) {
			data := tribunalCorpus
			if path != "" {
				var err error
				if data, err = os.ReadFile(path); err != nil {
					return nil, err
				}
			}
			corpus, err := readCorpus(data)
			if err != nil {
				return nil, err
			}
			return benchTribunal(ctx, cfg, corpus, repeat, rate, storm, progress)
		}, writeTribunalFigures),
	}
	f := cmd.Flags()
	f.IntVar(&repeat, "repeat", 1, "judge each corpus thought this many times (each copy a distinct thought)")
	f.Float64Var(&rate, "rate", 0, "thoughts per second to offer (0: all at once)")
	f.StringVar(&path, "corpus", "", "a JSON-lines file of labelled thoughts instead of the built-in corpus")
	f.String("format", "table", "table or json")
	f.IntVar(&storm, "rate-limit-first", 0, "with the simulator: answer the first N calls of every judge's question 429 (Retry-After 1 s), a rate-limit storm")
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
