package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

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
	Mode             string         `json:"mode"`
	Thoughts         int            `json:"thoughts"`
	OfferedRate      float64        `json:"offered_rate"` // thoughts/s, 0: as fast as possible
	Seconds          float64        `json:"seconds"`      // first publish to last output
	Throughput       float64        `json:"throughput"`   // thoughts/s with both outputs
	Stages           []StageFigures `json:"stages"`
	Both             StageFigures   `json:"both"` // the later of the two outputs
	Sequential       *StageFigures  `json:"sequential,omitempty"`
	PeakRSSMB        float64        `json:"worker_peak_rss_mb"` // the largest worker's
	WorkerRSSMB      []float64      `json:"workers_peak_rss_mb"`
	Workers          int            `json:"workers"`
	UpstreamCalls    int64          `json:"upstream_calls"`
	CeilingPub       float64        `json:"ceiling_js_pub_async_msgs_per_sec,omitempty"`
	CeilingConsume   float64        `json:"ceiling_js_consume_msgs_per_sec,omitempty"`
	RatioToPubCeil   float64        `json:"ratio_to_pub_ceiling,omitempty"`
	Concurrency      int            `json:"concurrency"`
	NotDelivered     int            `json:"not_delivered"`
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
reports noesis's throughput as a share of that ceiling.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			var o benchOptions
			o.mode, _ = f.GetString("mode")
			o.n, _ = f.GetInt("n")
			o.rate, _ = f.GetFloat64("rate")
			o.concurrency, _ = f.GetInt("concurrency")
			o.sequential, _ = f.GetInt("sequential")
			o.chart, _ = f.GetString("chart")
			o.ceiling, _ = f.GetBool("ceiling")
			o.inProcess, _ = f.GetBool("in-process")
			o.workers, _ = f.GetInt("workers")
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
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			return writePipelineFigures(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	f.String("mode", "seed", "seed, zero or cache")
	f.Int("n", 1000, "thoughts to publish")
	f.Float64("rate", 0, "thoughts per second to offer (0: as fast as the pipeline takes them)")
	f.Int("concurrency", 0, "workers per pool (0: enough for the rate at the seed's latencies, at least 256)")
	f.Int("sequential", 20, "thoughts to run through the seed's sequential plan (seed mode)")
	f.String("chart", "", "write an SVG or PNG chart of the latency distributions here")
	f.Bool("ceiling", true, "measure the nats bench JetStream ceiling on the same server (needs the nats CLI)")
	f.String("format", "table", "table or json")
	f.Int("workers", 1, "worker processes sharing the durable consumers")
	f.Bool("in-process", false, "run the worker in this process, not as a child (its memory is then not its own)")
	return cmd
}

type benchOptions struct {
	mode        string
	n           int
	rate        float64
	concurrency int
	sequential  int
	chart       string
	ceiling     bool
	inProcess   bool
	workers     int
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
	switch o.mode {
	case "seed":
		cfg.SimLatencyScale, cfg.SimLengths = 1, "seed" // the seed's capped calls: R1 answers in 1,930 ms
	default:
		cfg.SimLatencyScale = 0
	}
	conc := o.concurrency
	if conc <= 0 {
		conc = max(256, int(o.rate*2.2)) // Little's law at R1's 1.93 s, with room
	}
	cfg.FastConcurrency, cfg.ReasoningConcurrency = conc, conc
	cfg.FastMaxAckPending, cfg.ReasoningMaxAckPending = 4*conc, 4*conc
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	stack, err := startBenchStack(ctx, cfg, o.inProcess, o.workers, progress)
	if err != nil {
		return nil, err
	}
	defer stack.stop()

	nc, err := nats.Connect(stack.natsURL, nats.Name("noesis-bench"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, err
	}
	res := &PipelineFigures{Mode: o.mode, Thoughts: o.n, OfferedRate: o.rate, Concurrency: conc, Workers: max(o.workers, 1), samples: map[string][]float64{}}

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
	fmt.Fprintf(progress, "bench pipeline: mode %s, %d thoughts, rate %s, concurrency %d\n", o.mode, o.n, rateText(o.rate), conc)
	start, err := publishThoughts(ctx, js, "bench", "bench", o.n, o.rate, contents, arr)
	if err != nil {
		return nil, err
	}
	timeout := 60*time.Second + time.Duration(float64(o.n)/max(o.rate, 100)*float64(time.Second))
	arr.wait(timeout)
	last := arr.lastArrival()
	res.Seconds = last.Sub(start).Seconds()
	res.Stages, res.Both, res.NotDelivered = arr.figures(res.samples)
	if res.Seconds > 0 {
		res.Throughput = float64(res.Both.Received) / res.Seconds
	}
	for _, pid := range stack.workerPIDs() {
		rss := peakRSSMB(pid)
		res.WorkerRSSMB = append(res.WorkerRSSMB, rss)
		res.PeakRSSMB = max(res.PeakRSSMB, rss)
	}
	res.UpstreamCalls = stack.sim.Stats().Requests

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

// arrivals records when each thought was published and when each output arrived.
type arrivals struct {
	mu        sync.Mutex
	published []time.Time
	got       map[string][]time.Time // stage -> arrival by thought index
	remaining atomic.Int64
	done      chan struct{}
	subs      []*nats.Subscription
	last      time.Time
}

func newArrivals(n int) *arrivals {
	a := &arrivals{published: make([]time.Time, n), got: map[string][]time.Time{"narrative": make([]time.Time, n), "tribunal": make([]time.Time, n)}, done: make(chan struct{})}
	a.remaining.Store(int64(2 * n))
	return a
}

func (a *arrivals) subscribe(nc *nats.Conn, agent string) error {
	for _, subj := range []string{"noesis.narratives." + agent, "noesis.verdicts." + agent} {
		sub, err := nc.Subscribe(subj, func(m *nats.Msg) {
			now := time.Now()
			id := m.Header.Get(consumers.HeaderEventID)
			i, err := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
			stage := m.Header.Get(consumers.HeaderStage)
			a.mu.Lock()
			defer a.mu.Unlock()
			slot, ok := a.got[stage]
			if err != nil || !ok || i < 0 || i >= len(slot) || !slot[i].IsZero() {
				return
			}
			slot[i] = now
			a.last = now
			if a.remaining.Add(-1) == 0 {
				close(a.done)
			}
		})
		if err != nil {
			return err
		}
		_ = sub.SetPendingLimits(-1, -1)
		a.subs = append(a.subs, sub)
	}
	return nc.Flush()
}

func (a *arrivals) wait(d time.Duration) bool {
	select {
	case <-a.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (a *arrivals) lastArrival() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

func (a *arrivals) close() {
	for _, s := range a.subs {
		_ = s.Unsubscribe()
	}
}

func (a *arrivals) figures(samples map[string][]float64) ([]StageFigures, StageFigures, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []StageFigures
	var both []float64
	missing := 0
	for _, stage := range []string{"narrative", "tribunal"} {
		var xs []float64
		for i, t := range a.got[stage] {
			if t.IsZero() {
				missing++
				continue
			}
			xs = append(xs, ms(t.Sub(a.published[i])))
		}
		samples[stage] = xs
		out = append(out, stageFigures(stage, xs))
	}
	for i := range a.published {
		n, v := a.got["narrative"][i], a.got["tribunal"][i]
		if n.IsZero() || v.IsZero() {
			continue
		}
		if v.After(n) {
			n = v
		}
		both = append(both, ms(n.Sub(a.published[i])))
	}
	samples["both"] = both
	return out, stageFigures("both outputs", both), missing
}

func stageFigures(name string, xs []float64) StageFigures {
	return StageFigures{Stage: name, Received: len(xs), P50ms: percentile(xs, 50), P95ms: percentile(xs, 95), P99ms: percentile(xs, 99), MaxMs: percentile(xs, 100)}
}

// publishThoughts publishes n thoughts for agent at rate (0: at once),
// asynchronously, recording each publish time. It returns the first publish time.
func publishThoughts(ctx context.Context, js jetstream.JetStream, agent, prefix string, n int, rate float64, content func(int) string, a *arrivals) (time.Time, error) {
	payloads := make([][]byte, n)
	for i := range payloads {
		th := pipeline.Thought{EventID: fmt.Sprintf("%s-%d", prefix, i), AgentID: agent, Content: pipeline.Content{UserInput: content(i), Depth: 2},
			Action: "compact /archive", Stages: []pipeline.Stage{pipeline.StageNarrative, pipeline.StageTribunal}}
		payloads[i], _ = json.Marshal(th)
	}
	subject := consumers.ThoughtSubject(agent)
	start := time.Now()
	for i := 0; i < n; i++ {
		if rate > 0 {
			if wait := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); wait > 0 {
				time.Sleep(wait)
			}
		}
		a.mu.Lock()
		a.published[i] = time.Now()
		a.mu.Unlock()
		if _, err := js.PublishAsync(subject, payloads[i], jetstream.WithMsgID(fmt.Sprintf("%s-%d", prefix, i))); err != nil {
			return start, fmt.Errorf("publish: %w", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		return start, fmt.Errorf("publish: acknowledgements missing after 60 s")
	case <-ctx.Done():
		return start, ctx.Err()
	}
	return start, nil
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

// natsBenchCeiling runs nats bench's JetStream publisher and consumer on the server at url.
func natsBenchCeiling(ctx context.Context, natsCLI, url string, msgs int) (pub, consume float64, err error) {
	run := func(args ...string) (float64, error) {
		cmd := exec.CommandContext(ctx, natsCLI, append([]string{"-s", url, "bench"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, lastLine(out))
		}
		m := natsBenchRE.FindSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("%s: no rate in: %s", strings.Join(args, " "), lastLine(out))
		}
		return strconv.ParseFloat(strings.ReplaceAll(string(m[1]), ",", ""), 64)
	}
	n := strconv.Itoa(msgs)
	if pub, err = run("js", "pub", "async", "noesis-ceiling", "--create", "--stream", "NOESIS_CEILING", "--msgs", n, "--size", "600B", "--no-progress"); err != nil {
		return 0, 0, err
	}
	consume, err = run("js", "consume", "--stream", "NOESIS_CEILING", "--msgs", n, "--no-progress")
	return pub, consume, err
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// findTool looks for a program on PATH, then in GOPATH/bin.
func findTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// peakRSSMB reads a process's peak resident memory (VmHWM) on Linux.
func peakRSSMB(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

func writePipelineFigures(w io.Writer, r *PipelineFigures) error {
	fmt.Fprintf(w, "mode %s: %d thoughts, offered %s, %d worker process(es), concurrency %d per pool\n", r.Mode, r.Thoughts, rateText(r.OfferedRate), r.Workers, r.Concurrency)
	t := newTable(w)
	t.Header([]string{"end to end", "received", "p50 ms", "p95 ms", "p99 ms", "max ms"})
	rows := append(append([]StageFigures{}, r.Stages...), r.Both)
	if r.Sequential != nil {
		rows = append(rows, *r.Sequential)
	}
	for _, s := range rows {
		_ = t.Append([]string{s.Stage, strconv.Itoa(s.Received), f1(s.P50ms), f1(s.P95ms), f1(s.P99ms), f1(s.MaxMs)})
	}
	if err := t.Render(); err != nil {
		return err
	}
	fmt.Fprintf(w, "throughput: %.0f thoughts/s with both outputs (%.2f s from first publish to last output)\n", r.Throughput, r.Seconds)
	fmt.Fprintf(w, "upstream calls: %d; peak RSS per worker process: %v MB\n", r.UpstreamCalls, roundAll(r.WorkerRSSMB))
	if r.NotDelivered > 0 {
		fmt.Fprintf(w, "NOT DELIVERED within the wait: %d outputs\n", r.NotDelivered)
	}
	if r.CeilingPub > 0 {
		fmt.Fprintf(w, "ceiling on the same server: nats bench js pub async %.0f msgs/s, js consume %.0f msgs/s; noesis = %.1f%% of the publish ceiling\n",
			r.CeilingPub, r.CeilingConsume, 100*r.RatioToPubCeil)
	}
	return nil
}

// benchStack is what `bench pipeline` runs: an embedded NATS server and the
// simulator in this process, and one worker, `noesis serve`, as a child
// process, so its memory is its own.
type benchStack struct {
	server  *server.Server
	natsURL string
	sim     *sim.Server
	simURL  string
	workers []*childWorker // the workers as child processes, or
	inProc  *service       // the worker in this process
	cancel  context.CancelFunc
}

// childWorker is one `noesis serve` child process.
type childWorker struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// workerPIDs lists the workers' process ids (this process's, in-process).
func (st *benchStack) workerPIDs() []int {
	if len(st.workers) == 0 {
		return []int{os.Getpid()}
	}
	var out []int
	for _, w := range st.workers {
		out = append(out, w.cmd.Process.Pid)
	}
	return out
}

// startBenchStack starts the stack; tune, when given, adjusts the simulator's config.
func startBenchStack(ctx context.Context, cfg config.Config, inProcess bool, workers int, progress io.Writer, tune ...func(*sim.Config)) (_ *benchStack, err error) {
	st := &benchStack{}
	defer func() {
		if err != nil {
			st.stop()
		}
	}()
	if st.server, err = consumers.StartEmbedded(cfg.Embedded(), zerolog.Nop()); err != nil {
		return nil, err
	}
	st.natsURL = st.server.ClientURL()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var sctx context.Context
	sctx, st.cancel = context.WithCancel(context.WithoutCancel(ctx))
	sc := cfg.Sim()
	for _, fn := range tune {
		fn(&sc)
	}
	st.sim = sim.New(sc)
	go func() { _ = st.sim.Serve(sctx, ln) }()
	st.simURL = "http://" + ln.Addr().String() + "/v1"

	if inProcess {
		wcfg := cfg
		wcfg.NATSURL, wcfg.SimURL = st.natsURL, st.simURL
		if st.inProc, err = startService(sctx, wcfg, zerolog.New(progress).Level(zerolog.ErrorLevel)); err != nil {
			return nil, err
		}
		return st, nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	for i := 0; i < max(workers, 1); i++ {
		w := &childWorker{cmd: exec.Command(self, "serve", "--env-file", "/dev/null"), exited: make(chan struct{})}
		w.cmd.Env = append(os.Environ(), "NATS_URL="+st.natsURL, "LLM_PROVIDER=sim", "NOESIS_SIM_URL="+st.simURL, "NOESIS_TIERS=fast,reasoning",
			"NOESIS_LOG_LEVEL=error", "NOESIS_LOG_FORMAT=json",
			fmt.Sprintf("NOESIS_FAST_CONCURRENCY=%d", cfg.FastConcurrency), fmt.Sprintf("NOESIS_REASONING_CONCURRENCY=%d", cfg.ReasoningConcurrency),
			fmt.Sprintf("NOESIS_FAST_MAX_ACK_PENDING=%d", cfg.FastMaxAckPending), fmt.Sprintf("NOESIS_REASONING_MAX_ACK_PENDING=%d", cfg.ReasoningMaxAckPending))
		w.cmd.Stdout, w.cmd.Stderr = progress, progress
		if err := w.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start a worker: %w", err)
		}
		go func() { _ = w.cmd.Wait(); close(w.exited) }()
		st.workers = append(st.workers, w)
	}

	nc, err := nats.Connect(st.natsURL)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(30 * time.Second)
	for {
		live, _ := consumers.ListWorkers(ctx, js) // each worker announces itself once its pools run
		if len(live) >= len(st.workers) {
			time.Sleep(200 * time.Millisecond) // the pools start pulling
			return st, nil
		}
		for _, w := range st.workers {
			select {
			case <-w.exited:
				return nil, fmt.Errorf("a worker exited before it was ready")
			default:
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d workers ready after 30 s", len(live), len(st.workers))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (st *benchStack) stop() {
	for _, w := range st.workers {
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, w := range st.workers {
		select {
		case <-w.exited:
		case <-time.After(30 * time.Second):
			_ = w.cmd.Process.Kill()
		}
	}
	if st.cancel != nil {
		st.cancel()
	}
	if st.inProc != nil {
		_ = st.inProc.Wait()
	}
	if st.server != nil {
		st.server.Shutdown()
		st.server.WaitForShutdown()
	}
}
