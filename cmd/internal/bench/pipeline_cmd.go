package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/config"
)

// newBenchPipelineCmd is `noesis bench pipeline`.
func newBenchPipelineCmd() *cobra.Command {
	var o benchOptions
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
to a fresh simulator: the client floor. That worker runs as a process of its
own, as noesis's does (unless --in-process), and its peak RSS is noesis's
memory floor. Each of issue 10's goals the mode measures is printed beside its
floors, with noesis's figure as a ratio of each.`,
		Args: cobra.NoArgs,
		RunE: runFigures(func(ctx context.Context, cfg config.Config, progress io.Writer) (*PipelineFigures, error) {
			if err := o.check(); err != nil {
				return nil, err
			}
			if o.cpuProfile != "" {
				stop, err := startCPUProfile(o.cpuProfile)
				if err != nil {
					return nil, err
				}
				defer stop()
			}
			res, err := benchPipeline(ctx, cfg, o, progress)
			if err != nil {
				return nil, err
			}
			if o.chart != "" {
				if err := writeChart(o.chart, res); err != nil {
					return nil, err
				}
				fmt.Fprintf(progress, "chart written to %s\n", o.chart)
			}
			return res, nil
		}, writePipelineFigures),
	}
	f := cmd.Flags()
	f.StringVar(&o.mode, "mode", "seed", "seed, zero or cache")
	f.IntVar(&o.n, "n", 1000, "thoughts to publish")
	f.Float64Var(&o.rate, "rate", 0, "thoughts per second to offer (0: as fast as the pipeline takes them)")
	f.IntVar(&o.concurrency, "concurrency", 0, "fixed workers per pool (0: the default adaptive limit)")
	f.Float64Var(&o.providerRPS, "provider-rps", 0, "the simulated provider's quota, requests per second per model; past it, 429 with Retry-After (0: none)")
	f.IntVar(&o.sequential, "sequential", 20, "thoughts to run through the seed's sequential plan (seed mode)")
	f.StringVar(&o.chart, "chart", "", "write an SVG or PNG chart of the latency distributions here")
	f.BoolVar(&o.ceiling, "ceiling", true, "measure the nats bench JetStream ceiling on the same server (needs the nats CLI)")
	f.BoolVar(&o.cacheFloor, "cache-floor", true, "seed mode, with --client-floor: run the client floor again keeping its answers in noesis's answer cache (its size and TTLs as the worker's), after the same warm-up: the floor under the memory of a worker that keeps its answers")
	f.BoolVar(&o.clientFloor, "client-floor", true, "seed and zero modes: run the same thoughts through that worker making noesis's model calls with go-openai alone (no router, cache or tribunal)")
	f.DurationVar(&o.warmup, "warmup", 0, "first offer thoughts at a rate growing evenly from 0 to --rate over this long, and leave them out of the figures: the worker's steady state, measured apart from its start (whose verdict latencies are reported beside)")
	f.IntVar(&o.capacity, "provider-capacity", 0, "the simulated provider generates this many answers at once per model and queues the rest (0: no limit)")
	f.BoolVar(&o.floor, "floor", true, "zero and cache modes: run the same thoughts through a worker that does only noesis's JetStream work (pull, publish with PubAck, ack), the most any worker can do here")
	f.String("format", "table", "table or json")
	f.IntVar(&o.workers, "workers", 1, "worker processes sharing the durable consumers")
	f.StringVar(&o.http, "http", "2", "how the worker calls the simulator: 2 (h2c, as an HTTPS provider speaks HTTP/2) or 1.1 (one connection per call, as vLLM serves)")
	f.StringVar(&o.cpuProfile, "cpu-profile", "", "write this process's CPU profile here (the NATS server, the simulator and the load; the worker's own is served at NOESIS_PPROF_ADDR): go tool pprof reads it")
	f.BoolVar(&o.inProcess, "in-process", false, "run the worker, and the client floor's, in this process, not as children (their memory is then not their own)")
	return cmd
}

type benchOptions struct {
	cpuProfile  string
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
	cacheFloor  bool
	capacity    int // the simulator's answers at once per model (0: no limit)
	warmup      time.Duration
	inProcess   bool
	workers     int
	http        string // "2" or "1.1"
}

// check checks `bench pipeline`'s flags.
func (o benchOptions) check() error {
	if o.http != "2" && o.http != "1.1" {
		return fmt.Errorf("--http: want 2 or 1.1, got %q", o.http)
	}
	if o.mode != "seed" && o.mode != "zero" && o.mode != "cache" {
		return fmt.Errorf("--mode %q: want seed, zero or cache", o.mode)
	}
	if o.n <= 0 {
		return fmt.Errorf("--n: want 1 or more")
	}
	return nil
}
