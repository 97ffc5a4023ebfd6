package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/cmd/internal/proc"
	"github.com/noesis-dev/noesis/cmd/internal/service"
	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers/embedded"
	"github.com/noesis-dev/noesis/consumers/shared"
	"github.com/noesis-dev/noesis/router/sim"
)

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

// benchStack is what `bench pipeline` runs: an embedded NATS server and the
// simulator in this process, and one worker, `noesis serve`, as a child
// process, so its memory is its own.
type benchStack struct {
	server  *embedded.NATS
	natsURL string
	sim     *sim.Server
	simURL  string
	workers []*proc.Proc // the workers as child processes, each logging to logDir, or
	logDir  string
	inProc  *service.Service // the worker in this process
	cancel  context.CancelFunc
	// nc and js are the bench's own client connection (named
	// stackOptions.client), with room for many asynchronous publishes.
	nc      *nats.Conn
	js      jetstream.JetStream
	stopped bool
}

// workerPIDs lists the workers' process ids (this process's, in-process).
func (st *benchStack) workerPIDs() []int {
	if len(st.workers) == 0 {
		return []int{os.Getpid()}
	}
	var out []int
	for _, w := range st.workers {
		out = append(out, w.Pid())
	}
	return out
}

// stackOptions shape a bench stack.
type stackOptions struct {
	client    string            // the bench's connection name
	inProcess bool              // the worker in this process, not a child
	workers   int               // worker processes (children)
	http1     bool              // call the simulator over HTTP/1.1, as vLLM serves, not HTTP/2
	tune      func(*sim.Config) // adjusts the simulator's config, when set
	env       []string          // more settings for the worker processes
}

// startBenchStack starts the stack.
func startBenchStack(ctx context.Context, cfg config.Config, o stackOptions, progress io.Writer) (_ *benchStack, err error) {
	st := &benchStack{}
	defer func() {
		if err != nil {
			st.stop()
		}
	}()
	if st.server, err = embedded.Start(cfg.Embedded(), zerolog.Nop()); err != nil {
		return nil, err
	}
	st.natsURL = st.server.ClientURL()
	var sctx context.Context
	sctx, st.cancel = context.WithCancel(context.WithoutCancel(ctx))
	sc := cfg.Sim()
	if o.tune != nil {
		o.tune(&sc)
	}
	if st.sim, err = sim.New(sc); err != nil {
		return nil, err
	}
	if st.simURL, err = st.sim.Start(sctx, nil); err != nil {
		return nil, err
	}

	// The simulator is the sim provider, spoken to over HTTP/2 without TLS
	// (h2c) as an HTTPS provider speaks HTTP/2; or an OpenAI-compatible
	// endpoint on plain HTTP, which gets HTTP/1.1, one connection per call
	// in flight, as a vLLM server does.
	provider := []string{"LLM_PROVIDER=sim", "NOESIS_SIM_URL=" + st.simURL}
	if o.http1 {
		provider = []string{"LLM_PROVIDER=openai", "OPENAI_BASE_URL=" + st.simURL, "OPENAI_API_KEY=bench"}
	}
	if st.nc, err = nats.Connect(st.natsURL, nats.Name(o.client)); err != nil {
		return nil, err
	}
	if st.js, err = jetstream.New(st.nc, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
		return nil, err
	}
	if o.inProcess {
		wcfg := cfg
		wcfg.NATSURL, wcfg.SimURL = st.natsURL, st.simURL
		if o.http1 {
			wcfg.Provider, wcfg.OpenAIBaseURL, wcfg.OpenAIAPIKey = "openai", st.simURL, "bench"
		}
		if st.inProc, err = service.Start(sctx, wcfg, zerolog.New(progress).Level(zerolog.ErrorLevel)); err != nil {
			return nil, err
		}
		return st, nil
	}
	if err := st.startWorkers(cfg, o, provider); err != nil {
		return nil, err
	}
	if err := st.waitForWorkers(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

// benchWorkerEnv is the settings a bench's worker process gets beside the
// environment (it reads no .env file): the bench's tiers, limits and agent
// quota, as cfg has them. The client floor's worker gets them too, so that
// it makes the same calls over as many connections.
func benchWorkerEnv(cfg config.Config) []string {
	return []string{"NOESIS_TIERS=fast,reasoning",
		fmt.Sprintf("NOESIS_FAST_CONCURRENCY=%d", cfg.Tier.Fast.Concurrency), fmt.Sprintf("NOESIS_REASONING_CONCURRENCY=%d", cfg.Tier.Reasoning.Concurrency),
		fmt.Sprintf("NOESIS_FAST_MAX_ACK_PENDING=%d", cfg.Tier.Fast.MaxAckPending), fmt.Sprintf("NOESIS_REASONING_MAX_ACK_PENDING=%d", cfg.Tier.Reasoning.MaxAckPending),
		fmt.Sprintf("NOESIS_AGENT_MAX_THOUGHTS=%d", cfg.AgentMaxThoughts)}
}

// startWorkers starts o.workers `noesis serve` children (one at least)
// on the stack's server, speaking to the simulator as provider says.
func (st *benchStack) startWorkers(cfg config.Config, o stackOptions, provider []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// Each worker logs as it would by default (a line at info for every
	// output, JSON to a file), so its figures include that cost; the lines go
	// to a file of its own, not the bench's output. Logging at error
	// instead, as the bench did before, carried ~6 % more cache hits.
	if st.logDir, err = os.MkdirTemp("", "noesis-bench-workers-"); err != nil {
		return err
	}
	for i := 0; i < max(o.workers, 1); i++ {
		env := append(append([]string{}, provider...), o.env...)
		w, err := proc.Logged(st.logDir, fmt.Sprintf("worker-%d", i+1), append(append(env, "NATS_URL="+st.natsURL), benchWorkerEnv(cfg)...),
			self, "serve", "--env-file", "/dev/null")
		if err != nil {
			return err
		}
		st.workers = append(st.workers, w)
	}
	return nil
}

// waitForWorkers waits, 30 s at most, until every worker has announced
// itself (its pools run), and fails when one exits first.
func (st *benchStack) waitForWorkers(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		live, _ := shared.ListWorkers(ctx, st.js) // each worker announces itself as its pools start
		if len(live) >= len(st.workers) {
			time.Sleep(200 * time.Millisecond) // the pools start pulling
			return nil
		}
		for _, w := range st.workers {
			select {
			case <-w.Done():
				return fmt.Errorf("%s exited before it was ready; its last lines:\n%s", w.Name, w.Tail(20))
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d workers ready after 30 s", len(live), len(st.workers))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops the stack; a second call does nothing.
func (st *benchStack) stop() {
	if st.stopped {
		return
	}
	st.stopped = true
	for _, w := range st.workers {
		w.Stop(30 * time.Second)
	}
	if st.logDir != "" {
		_ = os.RemoveAll(st.logDir)
	}
	if st.cancel != nil {
		st.cancel()
	}
	if st.inProc != nil {
		_ = st.inProc.Wait()
	}
	if st.sim != nil {
		st.sim.Wait() // its context ended with st.cancel
	}
	if st.nc != nil {
		st.nc.Close()
	}
	if st.server != nil {
		st.server.Shutdown()
	}
}

// limits reads the pools' concurrency limits, the largest per stage over
// the workers: in-process from the pools, else from the workers'
// announcements, waiting (up to 15 s) for ones made after since.
func (st *benchStack) limits(ctx context.Context, js jetstream.JetStream, since time.Time) map[string]int {
	out := map[string]int{}
	if st.inProc != nil {
		for stage, p := range st.inProc.Pools() {
			out[string(stage)] = p.Limit().Limit
		}
		return out
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		workers, err := shared.ListWorkers(ctx, js)
		fresh := err == nil && len(workers) > 0
		for _, w := range workers {
			fresh = fresh && w.Seen.After(since)
		}
		if fresh || time.Now().After(deadline) {
			for _, w := range workers {
				for stage, l := range w.Limits {
					out[stage] = max(out[stage], l.Limit)
				}
			}
			return out
		}
		select {
		case <-ctx.Done():
			return out
		case <-time.After(250 * time.Millisecond):
		}
	}
}
