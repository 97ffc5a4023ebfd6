package bench

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
)

// newBenchPipelineCmd is `noesis bench pipeline`.
func newBenchPipelineCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Publish thoughts and time each output end to end",
		Long: `Publish thoughts (narrative + tribunal each) and time each output from publish
to arrival on its subject. Self-contained by default: an embedded NATS server, the
simulator and one worker process in this process. Modes:
  seed   the simulator at the seed's latencies (Llama-3.3-70B-fast 1135 ms, R1-0528-fast 1930 ms)
  zero   answers at once: the processor's own overhead
  cache  every thought repeats one of a few already answered: cache hits
In seed mode it also runs the seed's sequential plan (bridge, then the three judges
one after another) on the same simulator, for comparison. With the nats CLI on PATH it
runs 'nats bench js pub async' and 'nats bench js consume' on the same server and
reports noesis's throughput as a share of that ceiling. In zero and cache modes it
then runs the same thoughts through a worker that does only noesis's JetStream work
(pull, publish each output with its PubAck, ack), on a fresh server with the
rest stopped: the JetStream floor, the most any worker can do on this machine.
In seed and zero modes it also runs them through that worker making noesis's
model calls (the narrative's, the three judges' at once) with go-openai alone
to a fresh simulator: the client floor. Each of issue 10's goals the mode
measures is printed beside its floors, with noesis's figure as a ratio of each.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cli.LoadConfig(cmd)
			if err != nil {
				return err
			}
			o, err := readBenchOptions(cmd.Flags())
			if err != nil {
				return err
			}
			format, _ := cmd.Flags().GetString("format")
			res, err := benchPipeline(cmd.Context(), cfg, o, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if o.chart != "" {
				if err := writeChart(o.chart, res); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "chart written to %s\n", o.chart)
			}
			return writeFigures(cmd.OutOrStdout(), format, res, writePipelineFigures)
		},
	}
	f := cmd.Flags()
	f.String("mode", "seed", "seed, zero or cache")
	f.Int("n", 1000, "thoughts to publish")
	f.Float64("rate", 0, "thoughts per second to offer (0: as fast as the pipeline takes them)")
	f.Int("concurrency", 0, "fixed workers per pool (0: the default adaptive limit)")
	f.Float64("provider-rps", 0, "the simulated provider's quota, requests per second per model; past it, 429 with Retry-After (0: none)")
	f.Int("sequential", 20, "thoughts to run through the seed's sequential plan (seed mode)")
	f.String("chart", "", "write an SVG or PNG chart of the latency distributions here")
	f.Bool("ceiling", true, "measure the nats bench JetStream ceiling on the same server (needs the nats CLI)")
	f.Bool("client-floor", true, "seed and zero modes: run the same thoughts through that worker making noesis's model calls with go-openai alone (no router, cache or tribunal)")
	f.Duration("warmup", 0, "first offer thoughts at a rate growing evenly from 0 to --rate over this long, and leave them out of the figures: the worker's steady state, measured apart from its start (whose verdict latencies are reported beside)")
	f.Int("provider-capacity", 0, "the simulated provider generates this many answers at once per model and queues the rest (0: no limit)")
	f.Bool("floor", true, "zero and cache modes: run the same thoughts through a worker that does only noesis's JetStream work (pull, publish with PubAck, ack), the most any worker can do here")
	f.String("format", "table", "table or json")
	f.Int("workers", 1, "worker processes sharing the durable consumers")
	f.String("http", "2", "how the worker calls the simulator: 2 (h2c, as an HTTPS provider speaks HTTP/2) or 1.1 (one connection per call, as vLLM serves)")
	f.Bool("in-process", false, "run the worker in this process, not as a child (its memory is then not its own)")
	return cmd
}

type benchOptions struct {
	mode        string
	n           int
	rate        float64
	concurrency int
	providerRPS float64
	sequential  int
	chart       string
	ceiling     bool
	floor       bool
	clientFloor bool
	capacity    int // the simulator's answers at once per model (0: no limit)
	warmup      time.Duration
	inProcess   bool
	workers     int
	http        string // "2" or "1.1"
}

// readBenchOptions reads `bench pipeline`'s flags and checks them.
func readBenchOptions(f *pflag.FlagSet) (benchOptions, error) {
	var o benchOptions
	o.mode, _ = f.GetString("mode")
	o.n, _ = f.GetInt("n")
	o.rate, _ = f.GetFloat64("rate")
	o.concurrency, _ = f.GetInt("concurrency")
	o.providerRPS, _ = f.GetFloat64("provider-rps")
	o.sequential, _ = f.GetInt("sequential")
	o.chart, _ = f.GetString("chart")
	o.ceiling, _ = f.GetBool("ceiling")
	o.floor, _ = f.GetBool("floor")
	o.clientFloor, _ = f.GetBool("client-floor")
	o.capacity, _ = f.GetInt("provider-capacity")
	o.warmup, _ = f.GetDuration("warmup")
	o.inProcess, _ = f.GetBool("in-process")
	o.workers, _ = f.GetInt("workers")
	o.http, _ = f.GetString("http")
	if o.http != "2" && o.http != "1.1" {
		return o, fmt.Errorf("--http: want 2 or 1.1, got %q", o.http)
	}
	if o.mode != "seed" && o.mode != "zero" && o.mode != "cache" {
		return o, fmt.Errorf("--mode %q: want seed, zero or cache", o.mode)
	}
	if o.n <= 0 {
		return o, fmt.Errorf("--n: want 1 or more")
	}
	return o, nil
}
