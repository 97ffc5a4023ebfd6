package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// FairFigures is what `bench fair` measured in one run.
type FairFigures struct {
	FairShare    bool    `json:"fair_share"`
	Workers      int     `json:"workers"`
	Flood        int     `json:"flood"`
	JudgeSlots   int     `json:"judge_slots"`
	UnloadedMs   float64 `json:"unloaded_verdict_p50_ms"`   // the quiet agent's verdicts before the flood
	QuietSent    int     `json:"quiet_sent"`                // during the flood
	QuietP50ms   float64 `json:"quiet_verdict_p50_ms"`      // during the flood
	QuietP95ms   float64 `json:"quiet_verdict_p95_ms"`      // during the flood
	QuietMaxMs   float64 `json:"quiet_verdict_max_ms"`      // during the flood
	FloodGot     int     `json:"flood_verdicts"`            // of Flood
	FloodDrainMs float64 `json:"flood_drain_ms"`            // first publish to the flood's last verdict
	Throughput   float64 `json:"flood_verdicts_per_s"`      // Flood / drain
	P95Ratio     float64 `json:"quiet_p95_over_unloaded"`   // the goal: <= 2
	Missing      int     `json:"missing_outputs,omitempty"` // outputs that never came, both agents
}

func newBenchFairCmd() *cobra.Command {
	var o fairOptions
	cmd := &cobra.Command{
		Use:   "fair",
		Short: "One agent floods, another publishes one thought a second: the quiet agent's verdict times",
		Long: `Measure the fair share between agents. The simulator answers at the seed's
speeds (judges ~1.9 s); the reasoning model takes --judge-slots calls at once per
worker (NOESIS_LIMITS concurrency). A quiet agent publishes --baseline thoughts
alone (the unloaded verdict time), then, while a flooding agent publishes --flood
thoughts at once, one thought a second until the flood's verdicts are all in. It
reports the quiet agent's verdict times during the flood against the unloaded one,
and the flood's throughput. Run it with --fair-share=false for the same run first
come, first served.`,
		Args: cobra.NoArgs,
		RunE: runFigures(func(ctx context.Context, cfg config.Config, progress io.Writer) (*FairFigures, error) {
			if o.flood <= 0 || o.slots <= 0 || o.baseline <= 0 {
				return nil, fmt.Errorf("--flood, --judge-slots and --baseline: want 1 or more")
			}
			return benchFair(ctx, cfg, o, progress)
		}, writeFairFigures),
	}
	f := cmd.Flags()
	f.IntVar(&o.flood, "flood", 400, "thoughts the flooding agent publishes at once")
	f.IntVar(&o.slots, "judge-slots", 60, "judge calls the provider takes at once, per worker")
	f.IntVar(&o.baseline, "baseline", 5, "thoughts the quiet agent publishes alone first")
	f.IntVar(&o.workers, "workers", 1, "worker processes sharing the durable consumers")
	f.BoolVar(&o.fair, "fair-share", true, "NOESIS_FAIR_SHARE for the workers")
	f.Float64Var(&o.scale, "latency-scale", 1, "the simulator's latency scale (1: the seed's speeds)")
	f.String("format", "table", "table or json")
	return cmd
}

type fairOptions struct {
	flood, slots, baseline, workers int
	fair                            bool
	scale                           float64
}

// benchFair floods the pipeline from one agent while a quiet agent
// publishes one thought a second, and measures the quiet agent's verdicts
// against its unloaded ones.
func benchFair(ctx context.Context, cfg config.Config, o fairOptions, progress io.Writer) (*FairFigures, error) {
	dir, err := os.MkdirTemp("", "noesis-bench-fair-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st, err := startFairStack(ctx, cfg, o, dir, progress)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	res := &FairFigures{FairShare: o.fair, Workers: max(o.workers, 1), Flood: o.flood, JudgeSlots: o.slots}
	if res.UnloadedMs, err = unloadedVerdict(ctx, st, o.baseline); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "unloaded verdict p50 %.0f ms; flooding %d thoughts\n", res.UnloadedMs, o.flood)
	flood := newArrivals(o.flood)
	if err := flood.subscribe(st.nc, "flood"); err != nil {
		return nil, err
	}
	// The quiet agent publishes one a second for as long as the flood might
	// take with no fairness at all: every judge call in a row of the slots.
	most := int(float64(o.flood*3)/float64(o.slots*res.Workers)*res.UnloadedMs/1000) + 30
	quiet := newArrivals(most)
	if err := quiet.subscribe(st.nc, "quiet"); err != nil {
		return nil, err
	}
	qctx, stopQuiet := context.WithCancel(ctx)
	quietDone := publishQuiet(qctx, st, quiet, most)
	start, err := publishThoughts(ctx, st.js, "flood", "flood", o.flood, 0, func(i int) string { return fmt.Sprintf("flood %d: I will compact /archive", i) }, flood)
	if err != nil {
		stopQuiet()
		<-quietDone
		return nil, err
	}
	flood.wait(time.Duration(most) * time.Second)
	stopQuiet()
	res.QuietSent = <-quietDone
	for deadline := time.Now().Add(60 * time.Second); len(quiet.verdictTimes()) < res.QuietSent && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond) // the last quiet verdicts on their way
	}
	res.tally(flood, quiet, start, o.flood)
	return res, nil
}

// startFairStack starts `bench fair`'s stack in dir: the judges' calls to
// the simulator limited to o.slots at once per worker, fairness as o says.
func startFairStack(ctx context.Context, cfg config.Config, o fairOptions, dir string, progress io.Writer) (*benchStack, error) {
	cfg.NATSURL, cfg.NATSListen, cfg.DataDir = "", "127.0.0.1:0", dir
	cfg.Provider, cfg.SimURL, cfg.LogLevel = "sim", "", "error"
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reasoning := cfg.NebiusModelReasoning // the simulator serves the same model names
	env := []string{
		fmt.Sprintf("NOESIS_LIMITS=sim:%s=0/0/%d", reasoning, o.slots),
		"NOESIS_FAIR_SHARE=" + strconv.FormatBool(o.fair),
	}
	return startBenchStack(ctx, cfg, stackOptions{client: "noesis-bench-fair", workers: o.workers, env: env,
		tune: func(c *sim.Config) { c.Lengths, c.LatencyScale = sim.LengthsSeed, o.scale }}, progress)
}

// quietText is the quiet agent's i-th thought.
func quietText(i int) string {
	return fmt.Sprintf("quiet thought %d: I will rotate the staging keys", i)
}

// unloadedVerdict is the quiet agent's verdict p50 alone, n thoughts one a
// second.
func unloadedVerdict(ctx context.Context, st *benchStack, n int) (float64, error) {
	base := newArrivals(n)
	if err := base.subscribe(st.nc, "quiet-base"); err != nil {
		return 0, err
	}
	defer base.close()
	if _, err := publishThoughts(ctx, st.js, "quiet-base", "base", n, 1, quietText, base); err != nil {
		return 0, err
	}
	if !base.wait(60 * time.Second) {
		return 0, fmt.Errorf("the quiet agent's unloaded verdicts did not all come within 60 s")
	}
	return percentile(base.verdictTimes(), 50), nil
}

// publishQuiet publishes the quiet agent's thoughts, one a second, until
// most are out or ctx ends; the channel then says how many were sent.
func publishQuiet(ctx context.Context, st *benchStack, quiet *arrivals, most int) <-chan int {
	sent := make(chan int, 1)
	go func() {
		n := 0
		defer func() { sent <- n }()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for n < most {
			th := pipeline.Thought{EventID: fmt.Sprintf("quiet-%d", n), AgentID: "quiet", Content: pipeline.Content{UserInput: quietText(n), Depth: 2},
				Action: "rotate the staging keys", Stages: []pipeline.Stage{pipeline.StageNarrative, pipeline.StageTribunal}}
			data, _ := json.Marshal(th)
			quiet.mu.Lock()
			quiet.published[n] = time.Now()
			quiet.mu.Unlock()
			if _, err := st.js.Publish(ctx, consumers.ThoughtSubject("quiet"), data); err != nil {
				return
			}
			n++
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return sent
}

// tally fills in the flood's and the quiet agent's figures.
func (res *FairFigures) tally(flood, quiet *arrivals, start time.Time, floodN int) {
	res.FloodGot = len(flood.verdictTimes())
	res.FloodDrainMs = ms(flood.lastArrival().Sub(start))
	if res.FloodDrainMs > 0 {
		res.Throughput = float64(res.FloodGot) / (res.FloodDrainMs / 1000)
	}
	qs := quiet.verdictTimes()
	res.QuietP50ms, res.QuietP95ms, res.QuietMaxMs = percentile(qs, 50), percentile(qs, 95), percentile(qs, 100)
	if res.UnloadedMs > 0 {
		res.P95Ratio = res.QuietP95ms / res.UnloadedMs
	}
	res.Missing = (floodN - res.FloodGot) + (res.QuietSent - len(qs))
}

func writeFairFigures(w io.Writer, r *FairFigures) error {
	_, err := fmt.Fprintf(w, `fair share %t, %d worker(s), %d judge calls at once each, flood of %d
quiet agent, unloaded verdict p50:     %s ms
quiet agent during the flood (%d):     p50 %s ms, p95 %s ms, max %s ms  (p95 = %.2f x unloaded)
flood: %d of %d verdicts in %s ms:       %s verdicts/s
missing outputs: %d
`, r.FairShare, r.Workers, r.JudgeSlots, r.Flood, f0(r.UnloadedMs), r.QuietSent, f0(r.QuietP50ms), f0(r.QuietP95ms), f0(r.QuietMaxMs), r.P95Ratio,
		r.FloodGot, r.Flood, f0(r.FloodDrainMs), f1(r.Throughput), r.Missing)
	return err
}
