package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/pipeline"
)

// floorWorkerReady is what `bench floor-worker` prints once its consumers
// are set up and it pulls.
const floorWorkerReady = "floor worker ready"

// newBenchFloorWorkerCmd is `noesis bench floor-worker`, hidden: the client
// floor's worker (floorWorker making floorCalls's calls) as a process of
// its own, as `bench pipeline` runs it, so that its peak resident memory
// is its own, measured as the noesis worker's is. It works until its
// standard input closes, and takes its settings from the environment, as
// the bench's noesis workers do.
func newBenchFloorWorkerCmd() *cobra.Command {
	var natsURL, simURL, http string
	var narrative, verdict, transcript int
	var cached bool
	cmd := &cobra.Command{
		Use:    "floor-worker",
		Short:  "The client floor's worker, as bench pipeline runs it",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cli.LoadConfig(cmd)
			if err != nil {
				return err
			}
			calls, err := newFloorCalls(cfg, simURL, http == "2", cached)
			if err != nil {
				return err
			}
			defer calls.close()
			nc, err := nats.Connect(natsURL, nats.Name("noesis-floor-worker"))
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return err
			}
			ctx, stop := context.WithCancel(cmd.Context())
			go func() { // until the parent closes standard input
				_, _ = io.Copy(io.Discard, cmd.InOrStdin())
				stop()
			}()
			sizes := map[string]int{string(pipeline.StageNarrative): narrative, string(pipeline.StageTribunal): verdict, transcriptKey: transcript}
			var handlers sync.WaitGroup
			defer func() {
				stop() // a stage set up before an error stops pulling too
				handlers.Wait()
			}()
			if err := floorWorker(ctx, js, sizes, calls.work, &handlers); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), floorWorkerReady)
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&natsURL, "nats", "", "the NATS server's URL")
	f.StringVar(&simURL, "sim", "", "the simulator's OpenAI-compatible base URL")
	f.StringVar(&http, "http", "2", "2 (h2c) or 1.1")
	f.IntVar(&narrative, "narrative-bytes", 0, "each narrative's size")
	f.IntVar(&verdict, "verdict-bytes", 0, "each verdict's size")
	f.IntVar(&transcript, "transcript-bytes", 0, "each transcript's size, stored before its verdict (0: none)")
	f.BoolVar(&cached, "cache", false, "keep each answer in noesis's answer cache, at the worker's size and TTLs")
	return cmd
}

// floorProcess is a `bench floor-worker` child.
type floorProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	log   *bytes.Buffer // its standard error; read once it has exited
	ended chan struct{} // closed once it has exited, with err
	err   error
}

// startFloorProcess starts this binary as the client floor's worker on the
// server at natsURL, calling the simulator at simURL, and returns once it
// pulls. It gets the environment and settings the bench's noesis workers
// get (benchWorkerEnv), with the simulator as their provider, so that its
// calls are theirs: the same models, over as many connections. Like them,
// it runs in a process group of its own: a terminal's ^C reaches the
// bench, which stops it.
func startFloorProcess(ctx context.Context, cfg config.Config, natsURL, simURL, http string, sizes map[string]int, cached bool) (*floorProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "bench", "floor-worker", "--env-file", "/dev/null", "--nats", natsURL, "--sim", simURL, "--http", http,
		"--narrative-bytes", strconv.Itoa(sizes[string(pipeline.StageNarrative)]), "--verdict-bytes", strconv.Itoa(sizes[string(pipeline.StageTribunal)]),
		"--transcript-bytes", strconv.Itoa(sizes[transcriptKey]), "--cache="+strconv.FormatBool(cached))
	cmd.Env = append(append(os.Environ(), "LLM_PROVIDER=sim", "NOESIS_SIM_URL="+simURL), benchWorkerEnv(cfg)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &floorProcess{cmd: cmd, log: &bytes.Buffer{}, ended: make(chan struct{})}
	cmd.Stderr = p.log
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the client floor's worker: %w", err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if !ok && sc.Text() == floorWorkerReady {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
		p.err = cmd.Wait()
		close(p.ended)
	}()
	select {
	case ok := <-ready:
		if ok {
			return p, nil
		}
		<-p.ended
		err = fmt.Errorf("exited before it was ready (%v)", p.err)
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(30 * time.Second):
		err = errors.New("not ready within 30 s")
	}
	p.stop()
	return nil, fmt.Errorf("the client floor's worker: %w: %s", err, strings.TrimSpace(p.stderr()))
}

// exited reports whether the process has ended, and why.
func (p *floorProcess) exited() (bool, error) {
	select {
	case <-p.ended:
		return true, p.err
	default:
		return false, nil
	}
}

// peakRSSMB is the process's peak resident memory so far.
func (p *floorProcess) peakRSSMB() float64 { return peakRSSMB(p.cmd.Process.Pid) }

// stop closes the child's standard input and waits for it to end (killing
// it after 10 s).
func (p *floorProcess) stop() {
	_ = p.stdin.Close()
	select {
	case <-p.ended:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.ended
	}
}

// stderr is what the process wrote to its standard error, once it has
// exited (exec's copy of it has ended by then).
func (p *floorProcess) stderr() string {
	<-p.ended
	return p.log.String()
}
