package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
)

// StageFigures are one stage's end-to-end latencies: publish to output received.
type StageFigures struct {
	Stage    string  `json:"stage"`
	Received int     `json:"received"`
	P50ms    float64 `json:"p50_ms"`
	P95ms    float64 `json:"p95_ms"`
	P99ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
}

// PipelineFigures is the result of `bench pipeline`.
type PipelineFigures struct {
	Mode           string         `json:"mode"`
	Thoughts       int            `json:"thoughts"`
	OfferedRate    float64        `json:"offered_rate"` // thoughts/s, 0: as fast as possible
	Seconds        float64        `json:"seconds"`      // first publish to last output
	Throughput     float64        `json:"throughput"`   // thoughts/s with both outputs
	Stages         []StageFigures `json:"stages"`
	Both           StageFigures   `json:"both"` // the later of the two outputs
	Sequential     *StageFigures  `json:"sequential,omitempty"`
	PeakRSSMB      float64        `json:"worker_peak_rss_mb"` // the largest worker's
	WorkerRSSMB    []float64      `json:"workers_peak_rss_mb"`
	Workers        int            `json:"workers"`
	UpstreamCalls  int64          `json:"upstream_calls"`
	CeilingPub     float64        `json:"ceiling_js_pub_async_msgs_per_sec,omitempty"`
	CeilingConsume float64        `json:"ceiling_js_consume_msgs_per_sec,omitempty"`
	RatioToPubCeil float64        `json:"ratio_to_pub_ceiling,omitempty"`
	Concurrency    int            `json:"concurrency"`      // 0: the adaptive default
	HTTP           string         `json:"http"`             // the protocol to the simulator: 2 or 1.1
	Limits         map[string]int `json:"limits,omitempty"` // the pools' limits at the end, by stage (the largest over workers)
	ProviderRPS    float64        `json:"provider_rps,omitempty"`
	// Deliveries are each stage consumer's deliveries: one per thought when
	// no delivery was spent on a failure (a rate limit holds the thought).
	Deliveries map[string]uint64 `json:"deliveries"`
	// AskedAgain counts verdicts with a judge asked a second time (its first
	// answer unreadable); AnsweredOnce is the tribunal's figures without them.
	AskedAgain   int           `json:"verdicts_with_a_judge_asked_again"`
	AnsweredOnce *StageFigures `json:"tribunal_judges_asked_once,omitempty"`
	RateLimited  int64         `json:"rate_limited_calls"`
	// Floor is the same run through a worker that does only noesis's
	// JetStream work (zero and cache modes); RatioToFloor is noesis's
	// throughput over the floor's.
	Floor        *FloorFigures `json:"jetstream_floor,omitempty"`
	RatioToFloor float64       `json:"ratio_to_floor,omitempty"`
	// ClientFloor is the same run through that worker making noesis's model
	// calls with go-openai alone (seed and zero modes; see clientFloor).
	ClientFloor *FloorFigures `json:"client_floor,omitempty"`
	// Goals are issue 10's goals this mode measures, each beside its floors.
	Goals            []Goal `json:"goals,omitempty"`
	ProviderCapacity int    `json:"provider_capacity,omitempty"`
	NotDelivered     int    `json:"not_delivered"`
	samples          map[string][]float64
	sequentialSample []float64
}

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
			f := cmd.Flags()
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
			o.inProcess, _ = f.GetBool("in-process")
			o.workers, _ = f.GetInt("workers")
			o.http, _ = f.GetString("http")
			if o.http != "2" && o.http != "1.1" {
				return fmt.Errorf("--http: want 2 or 1.1, got %q", o.http)
			}
			format, _ := f.GetString("format")
			if o.mode != "seed" && o.mode != "zero" && o.mode != "cache" {
				return fmt.Errorf("--mode %q: want seed, zero or cache", o.mode)
			}
			if o.n <= 0 {
				return fmt.Errorf("--n: want 1 or more")
			}
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
	inProcess   bool
	workers     int
	http        string // "2" or "1.1"
}

func benchPipeline(ctx context.Context, cfg config.Config, o benchOptions, progress io.Writer) (*PipelineFigures, error) {
	dir, err := os.MkdirTemp("", "noesis-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg.NATSURL, cfg.NATSListen, cfg.DataDir = "", "127.0.0.1:0", dir
	cfg.Provider, cfg.SimURL = "sim", ""
	cfg.Tiers = []string{"fast", "reasoning"}
	cfg.LogLevel = "error"
	// One synthetic agent publishes every thought: on the bench's own server
	// it may hold them all, so the figures measure the pipeline, not the
	// quota per agent that would refuse such a flood by default.
	cfg.AgentMaxThoughts = int64(2*o.n + 1000)
	switch o.mode {
	case "seed":
		cfg.SimLatencyScale, cfg.SimLengths = 1, "seed" // the seed's capped calls: R1 answers in 1,930 ms
	default:
		cfg.SimLatencyScale = 0
	}
	conc := o.concurrency
	if conc > 0 { // hand-tuned; 0 leaves the default, the adaptive limit
		cfg.Tier.Fast.Concurrency, cfg.Tier.Reasoning.Concurrency = conc, conc
		cfg.Tier.Fast.MaxAckPending, cfg.Tier.Reasoning.MaxAckPending = 4*conc, 4*conc
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	stack, err := startBenchStack(ctx, cfg, stackOptions{client: "noesis-bench", inProcess: o.inProcess, workers: o.workers, http1: o.http == "1.1",
		tune: func(sc *sim.Config) { sc.RequestsPerSecond, sc.Capacity = o.providerRPS, o.capacity }}, progress)
	if err != nil {
		return nil, err
	}
	defer stack.stop()
	nc, js := stack.nc, stack.js
	res := &PipelineFigures{Mode: o.mode, Thoughts: o.n, OfferedRate: o.rate, Concurrency: conc, Workers: max(o.workers, 1), HTTP: o.http, ProviderCapacity: o.capacity, samples: map[string][]float64{}}

	contents := func(i int) string {
		return fmt.Sprintf("bench thought %d: I will compact the archive and report the space freed", i)
	}
	if o.mode == "cache" {
		const distinct = 10
		warm := newArrivals(distinct)
		if err := warm.subscribe(nc, "bench"); err != nil {
			return nil, err
		}
		if _, err := publishThoughts(ctx, js, "bench", "warm", distinct, 0, func(i int) string { return contents(i) }, warm); err != nil {
			return nil, err
		}
		if !warm.wait(60 * time.Second) {
			return nil, fmt.Errorf("cache warm-up: outputs missing")
		}
		warm.close()
		contents = func(i int) string {
			return fmt.Sprintf("bench thought %d: I will compact the archive and report the space freed", i%distinct)
		}
	}

	arr := newArrivals(o.n)
	if err := arr.subscribe(nc, "bench"); err != nil {
		return nil, err
	}
	defer arr.close()
	fmt.Fprintf(progress, "bench pipeline: mode %s, %d thoughts, rate %s, concurrency %s, HTTP/%s\n", o.mode, o.n, rateText(o.rate), concText(conc), o.http)
	start, err := publishThoughts(ctx, js, "bench", "bench", o.n, o.rate, contents, arr)
	if err != nil {
		return nil, err
	}
	timeout := 60*time.Second + time.Duration(float64(o.n)/max(o.rate, 100)*float64(time.Second))
	arr.wait(timeout)
	last := arr.lastArrival()
	res.Seconds = last.Sub(start).Seconds()
	res.Stages, res.Both, res.NotDelivered = arr.figures(res.samples)
	once, again := arr.answeredOnce()
	res.AnsweredOnce, res.AskedAgain = &once, again
	if res.Seconds > 0 {
		res.Throughput = float64(res.Both.Received) / res.Seconds
	}
	for _, pid := range stack.workerPIDs() {
		rss := peakRSSMB(pid)
		res.WorkerRSSMB = append(res.WorkerRSSMB, rss)
		res.PeakRSSMB = max(res.PeakRSSMB, rss)
	}
	simStats := stack.sim.Stats()
	res.UpstreamCalls, res.RateLimited, res.ProviderRPS = simStats.Requests, simStats.Faults["429"], o.providerRPS
	res.Limits = stack.limits(ctx, js, last)
	res.Deliveries = map[string]uint64{}
	for _, stage := range []pipeline.Stage{pipeline.StageNarrative, pipeline.StageTribunal} {
		if c, err := js.Consumer(ctx, consumers.StreamThoughts, string(stage)); err == nil {
			if info, err := c.Info(ctx); err == nil {
				res.Deliveries[string(stage)] = info.Delivered.Consumer
			}
		}
	}

	if o.mode == "seed" && o.sequential > 0 {
		fmt.Fprintf(progress, "bench pipeline: the seed's sequential plan, %d thoughts\n", o.sequential)
		seq, err := sequentialPlan(ctx, cfg, stack.simURL, o.sequential)
		if err != nil {
			return nil, err
		}
		res.sequentialSample = seq
		res.Sequential = &StageFigures{Stage: "seed sequential plan", Received: len(seq), P50ms: percentile(seq, 50), P95ms: percentile(seq, 95), P99ms: percentile(seq, 99), MaxMs: percentile(seq, 100)}
	}
	if o.ceiling {
		if natsCLI := findTool("nats"); natsCLI != "" {
			fmt.Fprintln(progress, "bench pipeline: nats bench js pub async / js consume on the same server")
			res.CeilingPub, res.CeilingConsume, err = natsBenchCeiling(ctx, natsCLI, stack.natsURL, max(o.n, 20000))
			if err != nil {
				fmt.Fprintf(progress, "nats bench: %v\n", err)
			} else if res.CeilingPub > 0 {
				res.RatioToPubCeil = res.Throughput / res.CeilingPub
			}
		} else {
			fmt.Fprintln(progress, "bench pipeline: no nats CLI on PATH or in GOPATH/bin; skipping the ceiling (make tools installs it)")
		}
	}
	if o.floor && o.mode != "seed" {
		stack.stop() // the floor has the processors to itself
		if res.Floor, err = jetStreamFloor(ctx, cfg, o, arr.meanBytes(), contents, progress); err != nil {
			return nil, fmt.Errorf("JetStream floor: %w", err)
		}
		if res.Floor.Throughput > 0 {
			res.RatioToFloor = res.Throughput / res.Floor.Throughput
		}
	}
	if o.clientFloor && o.mode != "cache" { // cache hits make no model calls
		stack.stop()
		if res.ClientFloor, err = clientFloor(ctx, cfg, o, arr.meanBytes(), contents, progress); err != nil {
			return nil, fmt.Errorf("client floor: %w", err)
		}
	}
	res.Goals = goals(res)
	return res, nil
}

func roundAll(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = math.Round(x)
	}
	return out
}

func rateText(r float64) string {
	if r <= 0 {
		return "as fast as it takes them"
	}
	return fmt.Sprintf("%g/s", r)
}

// sequentialPlan runs the seed's plan: the bridge, then VERITAS, SOPHIA and
// DIKĒ one after another, against the same simulator, with no cache.
func sequentialPlan(ctx context.Context, cfg config.Config, simURL string, n int) ([]float64, error) {
	rc := cfg.Router(simURL)
	chain, err := router.New(rc, nil, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	defer chain.Close()
	tr, err := pipeline.NewTribunal(chain, cfg.Tribunal())
	if err != nil {
		return nil, err
	}
	bridge := &pipeline.Bridge{Completer: chain, Temperature: float32(cfg.NarrativeTemperature), MaxTokens: cfg.NarrativeMaxTokens}
	temp := float32(cfg.Temperature)
	var out []float64
	for i := 0; i < n; i++ {
		th := pipeline.Thought{EventID: fmt.Sprintf("seq-%d", i), AgentID: "sequential", Content: pipeline.Content{UserInput: fmt.Sprintf("sequential thought %d", i), Depth: 2}}
		start := time.Now()
		if _, err := bridge.Process(ctx, th); err != nil {
			return nil, err
		}
		for _, j := range tr.Judges() {
			if _, err := chain.Complete(ctx, pipeline.Request{Tier: pipeline.TierReasoning, Messages: tr.Messages(j, &th), Temperature: temp, MaxTokens: cfg.MaxTokens}); err != nil {
				return nil, err
			}
		}
		out = append(out, ms(time.Since(start)))
	}
	return out, nil
}

var natsBenchRE = regexp.MustCompile(`stats: ([\d,]+) msgs/sec`)

func concText(c int) string {
	if c <= 0 {
		return "adaptive (the default)"
	}
	return fmt.Sprintf("%d (fixed)", c)
}
