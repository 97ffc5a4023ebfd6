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
	OfferedRate    float64        `json:"offered_rate"`     // thoughts/s, 0: as fast as possible
	Seconds        float64        `json:"seconds"`          // first publish to last output
	Throughput     float64        `json:"throughput"`       // thoughts/s with both outputs
	LongestPauseMs float64        `json:"longest_pause_ms"` // the longest time with no output arriving
	Stages         []StageFigures `json:"stages"`
	Both           StageFigures   `json:"both"` // the later of the two outputs
	Sequential     *StageFigures  `json:"sequential,omitempty"`
	PeakRSSMB      float64        `json:"worker_peak_rss_mb"` // the largest worker's
	// MachineBusyPct is how busy the machine's processors were (all of
	// them, every process) from the first measured thought's publish to the
	// last output; WorkerCPUUs is the worker processes' processor time in
	// that window over the measured thoughts, in microseconds (Linux only;
	// 0 with --in-process).
	MachineBusyPct float64        `json:"machine_busy_pct,omitempty"`
	WorkerCPUUs    float64        `json:"worker_cpu_us_per_thought,omitempty"`
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
	// TribunalSplit is the verdicts' end-to-end time in three: before the
	// tribunal (the thought's wait to be pulled), the tribunal's own time
	// (the verdicts' latency_ms) and after it (the publishes), by the
	// verdicts' created_at.
	TribunalSplit []StageFigures `json:"tribunal_split,omitempty"`
	RateLimited   int64          `json:"rate_limited_calls"`
	// Floor is the same run through a worker that does only noesis's
	// JetStream work (zero and cache modes); RatioToFloor is noesis's
	// throughput over the floor's.
	Floor        *FloorFigures `json:"jetstream_floor,omitempty"`
	RatioToFloor float64       `json:"ratio_to_floor,omitempty"`
	// ClientFloor is the same run through that worker making noesis's model
	// calls with go-openai alone (seed and zero modes; see clientFloor).
	ClientFloor *FloorFigures `json:"client_floor,omitempty"`
	// CachedClientFloor is the client floor keeping its answers in noesis's
	// answer cache, after the same warm-up as the worker (seed mode, with
	// --cache-floor; see clientFloor): the floor under the memory of a
	// worker that keeps its answers.
	CachedClientFloor *FloorFigures `json:"client_floor_cached,omitempty"`
	// Goals are issue 10's goals this mode measures, each beside its floors.
	Goals            []Goal `json:"goals,omitempty"`
	ProviderCapacity int    `json:"provider_capacity,omitempty"`
	// WarmupThoughts were published at the same rate before the measured
	// ones (--warmup) and left out of every figure above; WarmupVerdicts
	// are their verdicts' latencies: the adaptive limits' ramp from a cold start.
	WarmupThoughts int           `json:"warmup_thoughts,omitempty"`
	WarmupVerdicts *StageFigures `json:"warmup_verdicts,omitempty"`
	NotDelivered   int           `json:"not_delivered"`
	// DeadLetters is what NOESIS_DLQ holds after the run.
	DeadLetters uint64 `json:"dead_letters"`
	// IdealDrainS is, with --provider-capacity and no offered rate (a
	// burst), how long the provider itself needs for the burst's calls:
	// each model's calls times its mean latency over the answers it
	// generates at once, the slower model's.
	IdealDrainS      float64 `json:"ideal_drain_s,omitempty"`
	samples          map[string][]float64
	sequentialSample []float64
}

// benchPipeline runs o.n thoughts through a whole stack of its own, times
// their outputs and, as o asks, compares them with the seed's sequential
// plan, the nats bench ceiling and the floors.
func benchPipeline(ctx context.Context, cfg config.Config, o benchOptions, progress io.Writer) (*PipelineFigures, error) {
	dir, err := os.MkdirTemp("", "noesis-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := pipelineConfig(&cfg, o, dir); err != nil {
		return nil, err
	}
	stack, err := startBenchStack(ctx, cfg, stackOptions{client: "noesis-bench", inProcess: o.inProcess, workers: o.workers, http1: o.http == "1.1",
		tune: func(sc *sim.Config) { sc.RequestsPerSecond, sc.Capacity = o.providerRPS, o.capacity }}, progress)
	if err != nil {
		return nil, err
	}
	defer stack.stop()
	res := &PipelineFigures{Mode: o.mode, Thoughts: o.n, OfferedRate: o.rate, Concurrency: o.concurrency, Workers: max(o.workers, 1), HTTP: o.http, ProviderCapacity: o.capacity, samples: map[string][]float64{}}
	if o.mode == "seed" && o.capacity > 0 && o.rate == 0 {
		res.IdealDrainS = idealDrain(cfg, o.n, o.capacity).Seconds()
	}
	contents := func(i int) string {
		return fmt.Sprintf("bench thought %d: I will compact the archive and report the space freed", i)
	}
	if o.mode == "cache" {
		if contents, err = warmCache(ctx, stack); err != nil {
			return nil, err
		}
	}
	warm := rampLen(o.rate, o.warmup) // the warm-up's thoughts: the offered rate growing from 0 to o.rate
	arr := newArrivals(warm + o.n)
	arr.from = warm
	if err := arr.subscribe(stack.nc, "bench"); err != nil {
		return nil, err
	}
	defer arr.close()
	fmt.Fprintf(progress, "bench pipeline: mode %s, %d thoughts after %d of warm-up, rate %s, concurrency %s, HTTP/%s\n", o.mode, o.n, warm, rateText(o.rate), concText(o.concurrency), o.http)
	cpu := startCPUSampler(stack.workerPIDs)
	if _, err := publishRamped(ctx, stack.js, "bench", "bench", warm+o.n, o.rate, o.warmup, contents, arr); err != nil {
		cpu.close()
		return nil, err
	}
	arr.wait(o.outputWait(cfg, warm+o.n))
	cpu.close()
	if busy, worker, ok := cpu.window(arr.publishedAt(warm), arr.lastArrival()); ok {
		res.MachineBusyPct, res.WorkerCPUUs = 100*busy, 1e6*worker/float64(o.n)
	}
	if warm > 0 {
		w := arr.warmupVerdicts()
		res.WarmupThoughts, res.WarmupVerdicts = warm, &w
	}
	res.measure(ctx, stack, arr, arr.publishedAt(warm), o)
	if err := res.compare(ctx, cfg, o, stack, arr.meanBytes(), contents, progress); err != nil {
		return nil, err
	}
	res.Goals = goals(res)
	return res, nil
}

// outputWait is how long a run of n thoughts waits for their outputs: a
// minute past their offering (at 100/s at least), and with
// --provider-capacity twice the provider's ideal for them (idealDrain).
func (o benchOptions) outputWait(cfg config.Config, n int) time.Duration {
	d := 60*time.Second + time.Duration(float64(n)/max(o.rate, 100)*float64(time.Second))
	if o.capacity > 0 {
		d += 2 * idealDrain(cfg, n, o.capacity)
	}
	return d
}

// idealDrain is how long a provider that generates capacity answers at once
// per model needs for n thoughts' calls at the seed's mean latencies: one
// narrative a thought on the fast tier's model, three judges on the
// reasoning tier's, the slower of the two models.
func idealDrain(cfg config.Config, n, capacity int) time.Duration {
	profiles := sim.SeedProfiles()
	fast, reasoning := profiles[cfg.NebiusModel].Latency, profiles[cfg.NebiusModelReasoning].Latency
	return max(time.Duration(n)*fast, time.Duration(3*n)*reasoning) / time.Duration(capacity)
}

// pipelineConfig sets cfg up for `bench pipeline`: an embedded server in
// dir, the simulator at o.mode's pace, the fast and reasoning tiers.
func pipelineConfig(cfg *config.Config, o benchOptions, dir string) error {
	cfg.NATSURL, cfg.NATSListen, cfg.DataDir = "", "127.0.0.1:0", dir
	cfg.Provider, cfg.SimURL = "sim", ""
	cfg.Tiers = []string{"fast", "reasoning"}
	cfg.LogLevel = "error"
	// One synthetic agent publishes every thought: on the bench's own server
	// it may hold them all, so the figures measure the pipeline, not the
	// quota per agent that would refuse such a flood by default.
	cfg.AgentMaxThoughts = int64(2*(rampLen(o.rate, o.warmup)+o.n) + 1000) // the warm-up's thoughts too
	switch o.mode {
	case "seed":
		cfg.SimLatencyScale, cfg.SimLengths = 1, "seed" // the seed's capped calls: R1 answers in 1,930 ms
	default:
		cfg.SimLatencyScale = 0
	}
	if conc := o.concurrency; conc > 0 { // hand-tuned; 0 leaves the default, the adaptive limit
		cfg.Tier.Fast.Concurrency, cfg.Tier.Reasoning.Concurrency = conc, conc
		cfg.Tier.Fast.MaxAckPending, cfg.Tier.Reasoning.MaxAckPending = 4*conc, 4*conc
	}
	return cfg.Validate()
}

// warmCache answers a few distinct thoughts once, and returns the contents
// that repeat them: every thought of the run is then a cache hit.
func warmCache(ctx context.Context, stack *benchStack) (func(int) string, error) {
	const distinct = 10
	contents := func(i int) string {
		return fmt.Sprintf("bench thought %d: I will compact the archive and report the space freed", i%distinct)
	}
	warm := newArrivals(distinct)
	if err := warm.subscribe(stack.nc, "bench"); err != nil {
		return nil, err
	}
	defer warm.close()
	if _, err := publishThoughts(ctx, stack.js, "bench", "warm", distinct, 0, contents, warm); err != nil {
		return nil, err
	}
	if !warm.wait(60 * time.Second) {
		return nil, fmt.Errorf("cache warm-up: outputs missing")
	}
	return contents, nil
}

// measure reads the run's figures: latencies and throughput from the
// arrivals since start, and the workers' memory, the simulator's calls, the
// pools' limits and the consumers' deliveries from the stack.
func (res *PipelineFigures) measure(ctx context.Context, stack *benchStack, arr *arrivals, start time.Time, o benchOptions) {
	last := arr.lastArrival()
	res.Seconds = last.Sub(start).Seconds()
	res.Stages, res.Both, res.NotDelivered = arr.figures(res.samples)
	once, again := arr.answeredOnce()
	res.AnsweredOnce, res.AskedAgain = &once, again
	if wait, own, publish := arr.verdictSplit(); own.Received > 0 {
		res.TribunalSplit = []StageFigures{wait, own, publish}
	}
	if res.Seconds > 0 {
		res.Throughput = float64(res.Both.Received) / res.Seconds
	}
	res.LongestPauseMs = ms(arr.longestPause())
	for _, pid := range stack.workerPIDs() {
		rss := peakRSSMB(pid)
		res.WorkerRSSMB = append(res.WorkerRSSMB, rss)
		res.PeakRSSMB = max(res.PeakRSSMB, rss)
	}
	simStats := stack.sim.Stats()
	res.UpstreamCalls, res.RateLimited, res.ProviderRPS = simStats.Requests, simStats.Faults["429"], o.providerRPS
	res.Limits = stack.limits(ctx, stack.js, last)
	if st, err := stack.js.Stream(ctx, consumers.StreamDLQ); err == nil {
		res.DeadLetters = st.CachedInfo().State.Msgs
	}
	res.Deliveries = map[string]uint64{}
	for _, stage := range []pipeline.Stage{pipeline.StageNarrative, pipeline.StageTribunal} {
		if c, err := stack.js.Consumer(ctx, consumers.StreamThoughts, string(stage)); err == nil {
			if info, err := c.Info(ctx); err == nil {
				res.Deliveries[string(stage)] = info.Delivered.Consumer
			}
		}
	}
}

// compare runs what o asks the run be compared with: the seed's sequential
// plan (seed mode), the nats bench ceiling, the JetStream floor (zero and
// cache modes) and the client floor (seed and zero modes). The floors stop
// the stack first: they have the processors to themselves.
func (res *PipelineFigures) compare(ctx context.Context, cfg config.Config, o benchOptions, stack *benchStack, sizes map[string]int, contents func(int) string, progress io.Writer) error {
	var err error
	if o.mode == "seed" && o.sequential > 0 {
		fmt.Fprintf(progress, "bench pipeline: the seed's sequential plan, %d thoughts\n", o.sequential)
		seq, err := sequentialPlan(ctx, cfg, stack.simURL, o.sequential)
		if err != nil {
			return err
		}
		res.sequentialSample = seq
		res.Sequential = &StageFigures{Stage: "seed sequential plan", Received: len(seq), P50ms: percentile(seq, 50), P95ms: percentile(seq, 95), P99ms: percentile(seq, 99), MaxMs: percentile(seq, 100)}
	}
	if o.ceiling {
		res.ceiling(ctx, stack.natsURL, o.n, progress)
	}
	if o.floor && o.mode != "seed" {
		stack.stop()
		if res.Floor, err = jetStreamFloor(ctx, cfg, o, sizes, contents, progress); err != nil {
			return fmt.Errorf("JetStream floor: %w", err)
		}
		if res.Floor.Throughput > 0 {
			res.RatioToFloor = res.Throughput / res.Floor.Throughput
		}
	}
	if o.clientFloor && o.mode != "cache" { // cache hits make no model calls
		stack.stop()
		if res.ClientFloor, err = clientFloor(ctx, cfg, o, sizes, contents, false, progress); err != nil {
			return fmt.Errorf("client floor: %w", err)
		}
		if o.cacheFloor && o.mode == "seed" && cachesAnswers(cfg) {
			if res.CachedClientFloor, err = clientFloor(ctx, cfg, o, sizes, contents, true, progress); err != nil {
				return fmt.Errorf("client floor with the answer cache: %w", err)
			}
		}
	}
	return nil
}

// ceiling runs nats bench on the stack's server, when the nats CLI is at
// hand, for the ceiling noesis's throughput is a share of.
func (res *PipelineFigures) ceiling(ctx context.Context, natsURL string, n int, progress io.Writer) {
	natsCLI := findTool("nats")
	if natsCLI == "" {
		fmt.Fprintln(progress, "bench pipeline: no nats CLI on PATH or in GOPATH/bin; skipping the ceiling (make tools installs it)")
		return
	}
	fmt.Fprintln(progress, "bench pipeline: nats bench js pub async / js consume on the same server")
	var err error
	res.CeilingPub, res.CeilingConsume, err = natsBenchCeiling(ctx, natsCLI, natsURL, max(n, 20000))
	if err != nil {
		fmt.Fprintf(progress, "nats bench: %v\n", err)
	} else if res.CeilingPub > 0 {
		res.RatioToPubCeil = res.Throughput / res.CeilingPub
	}
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

// cachesAnswers reports whether cfg's worker keeps the narratives' or the
// judges' answers in its answer cache.
func cachesAnswers(cfg config.Config) bool {
	ttl := cfg.Cache().TTL
	return ttl[pipeline.TierFast] > 0 || ttl[pipeline.TierReasoning] > 0
}
