package bench

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
)

// Command is `noesis bench`: models, pipeline, tribunal and shadow.
func Command() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure models and the pipeline"}
	cmd.AddCommand(newBenchModelsCmd(), newBenchPipelineCmd(), newBenchTribunalCmd(), newBenchShadowCmd(), newBenchFairCmd(), newBenchFloorWorkerCmd())
	return cmd
}

// benchPrompt is the fixed prompt every model gets, in turn.
var benchPrompts = []string{
	"In three sentences, explain why an agent should state its intent before acting.",
	"List three risks of deleting backups to free disk space, one line each.",
	"Summarise the idea of a jury of small models judging a larger one.",
}

// ModelFigures is one model's row of `bench models`.
type ModelFigures struct {
	Model         string  `json:"model"`
	Tier          string  `json:"tier,omitempty"`
	Calls         int     `json:"calls"`
	Errors        int     `json:"errors"`
	TTFTp50ms     float64 `json:"ttft_p50_ms"`
	LatencyP50ms  float64 `json:"latency_p50_ms"`
	LatencyP95ms  float64 `json:"latency_p95_ms"`
	LatencyMeanMs float64 `json:"latency_mean_ms"`
	TokensPerSec  float64 `json:"tokens_per_sec"`
	SeedLatencyMs float64 `json:"seed_latency_ms,omitempty"`
	SeedTokPerSec float64 `json:"seed_tokens_per_sec,omitempty"`
	LastError     string  `json:"last_error,omitempty"`
}

func newBenchModelsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "Time streamed calls to each model: time to first token, latency, tokens/s",
		Long: `Send N streamed calls per model (a fixed prompt set, in turn) to the configured
provider and print, per model, time to first token, latency p50/p95 and output
tokens per second (tokens over the whole call, as the seed report measured them),
beside the seed's figures when the model is in its table. With the simulator
(LLM_PROVIDER=sim or auto without a key) the calls go to an in-process simulator
over HTTP, at NOESIS_SIM_LATENCY_SCALE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cli.LoadConfig(cmd)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			calls, _ := f.GetInt("calls")
			maxTokens, _ := f.GetInt("max-tokens")
			format, _ := f.GetString("format")
			models, _ := f.GetStringSlice("models")
			all, _ := f.GetBool("all")
			if calls <= 0 {
				return fmt.Errorf("--calls: want 1 or more")
			}
			provider, stop, err := benchProvider(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer stop()
			p := NewProber(provider, 4)
			tiers := map[string]string{}
			for t, m := range cfg.Models() {
				tiers[m] = string(t)
			}
			switch {
			case all:
				if models, err = p.Models(cmd.Context()); err != nil {
					return err
				}
			case len(models) == 0:
				for _, t := range pipeline.Tiers {
					models = append(models, cfg.Models()[t])
				}
			}
			bar := progressbar.NewOptions(len(models)*calls, progressbar.OptionSetWriter(cmd.ErrOrStderr()),
				progressbar.OptionSetDescription("bench models"), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(),
				progressbar.OptionSetVisibility(cli.IsTerminal(cmd.ErrOrStderr())))
			var rows []ModelFigures
			seed := sim.SeedProfiles()
			for _, m := range models {
				row := benchModel(cmd.Context(), p, m, calls, maxTokens, func() { _ = bar.Add(1) })
				row.Tier = tiers[m]
				if prof, ok := seed[m]; ok {
					row.SeedLatencyMs, row.SeedTokPerSec = float64(prof.Latency.Milliseconds()), prof.TokensPerSecond
				}
				rows = append(rows, row)
			}
			_ = bar.Finish()
			return writeModelFigures(cmd.OutOrStdout(), format, rows)
		},
	}
	f := cmd.Flags()
	f.StringSlice("models", nil, "models to time (default: the three tier models)")
	f.Bool("all", false, "time every model the provider lists")
	f.Int("calls", 5, "streamed calls per model")
	f.Int("max-tokens", 0, "max_tokens per call (0: the provider's default)")
	f.String("format", "table", "table, csv or json")
	return cmd
}

// benchProvider returns the configured provider, starting an in-process
// simulator when the provider is the simulator and no NOESIS_SIM_URL is set;
// the func returned stops that simulator and waits until it has.
func benchProvider(ctx context.Context, cfg config.Config) (router.Provider, func(), error) {
	rc := cfg.Router("")
	p := rc.Providers[0]
	if p.Kind != router.KindSim {
		return p, func() {}, nil
	}
	if cfg.SimURL != "" {
		p.BaseURL = cfg.SimURL
		return p, func() {}, nil
	}
	srv, err := sim.New(cfg.Sim())
	if err != nil {
		return p, nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := func() { cancel(); srv.Wait() }
	url, err := srv.Start(sctx, nil)
	if err != nil {
		stop()
		return p, nil, err
	}
	p.BaseURL = url
	return p, stop, nil
}

func benchModel(ctx context.Context, p *Prober, model string, calls, maxTokens int, tick func()) ModelFigures {
	row := ModelFigures{Model: model}
	var ttft, lat []float64
	var tokens, seconds float64
	for i := 0; i < calls; i++ {
		msgs := []pipeline.Message{{Role: pipeline.RoleUser, Content: benchPrompts[i%len(benchPrompts)]}}
		r, err := p.Stream(ctx, model, msgs, maxTokens)
		tick()
		if err != nil {
			row.Errors++
			row.LastError = err.Error()
			continue
		}
		row.Calls++
		ttft = append(ttft, ms(r.TTFT))
		lat = append(lat, ms(r.Latency))
		tokens += float64(r.CompletionTokens)
		seconds += r.Latency.Seconds()
	}
	row.TTFTp50ms, row.LatencyP50ms, row.LatencyP95ms = percentile(ttft, 50), percentile(lat, 50), percentile(lat, 95)
	row.LatencyMeanMs = mean(lat)
	if seconds > 0 {
		row.TokensPerSec = tokens / seconds
	}
	return row
}

func writeModelFigures(w io.Writer, format string, rows []ModelFigures) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"model", "tier", "calls", "errors", "ttft_p50_ms", "latency_p50_ms", "latency_p95_ms", "latency_mean_ms", "tokens_per_sec", "seed_latency_ms", "seed_tokens_per_sec"})
		for _, r := range rows {
			_ = cw.Write([]string{r.Model, r.Tier, strconv.Itoa(r.Calls), strconv.Itoa(r.Errors), f1(r.TTFTp50ms), f1(r.LatencyP50ms), f1(r.LatencyP95ms),
				f1(r.LatencyMeanMs), f1(r.TokensPerSec), f1(r.SeedLatencyMs), f1(r.SeedTokPerSec)})
		}
		cw.Flush()
		return cw.Error()
	case "table":
		t := cli.Table(w)
		t.Header([]string{"model", "tier", "calls", "errors", "TTFT p50 ms", "latency p50 ms", "latency p95 ms", "tok/s", "seed latency ms", "seed tok/s"})
		for _, r := range rows {
			_ = t.Append([]string{r.Model, r.Tier, strconv.Itoa(r.Calls), strconv.Itoa(r.Errors), f0(r.TTFTp50ms), f0(r.LatencyP50ms), f0(r.LatencyP95ms),
				f1(r.TokensPerSec), f0(r.SeedLatencyMs), f1(r.SeedTokPerSec)})
		}
		if err := t.Render(); err != nil {
			return err
		}
		for _, r := range rows {
			if r.LastError != "" {
				fmt.Fprintf(w, "%s: %d errors, the last: %s\n", r.Model, r.Errors, r.LastError)
			}
		}
		return nil
	}
	return fmt.Errorf("--format %q: want table, csv or json", format)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func f0(v float64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// percentile returns the p-th percentile (nearest rank) of xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// runFigures is the RunE of a bench command that measures once: measure runs
// with the loaded configuration, saying its progress on standard error, and
// its figures go to standard output as --format says: "json", or the table
// that table writes.
func runFigures[T any](measure func(ctx context.Context, cfg config.Config, progress io.Writer) (T, error), table func(io.Writer, T) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		cfg, err := cli.LoadConfig(cmd)
		if err != nil {
			return err
		}
		res, err := measure(cmd.Context(), cfg, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		format, _ := cmd.Flags().GetString("format")
		return writeFigures(cmd.OutOrStdout(), format, res, table)
	}
}

// writeFigures prints a bench's result: indented JSON, or as table says.
func writeFigures[T any](w io.Writer, format string, res T, table func(io.Writer, T) error) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return table(w, res)
}

// benchCommands is the bench command; a nobench binary (the container
// image) has none.

// startCPUProfile profiles this process's CPU into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
