package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/cmd/internal/service"
	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// The doomed worker of TestExactlyOnceWhenAWorkerIsKilledMidWork runs in a
// process of its own (this test binary, run again): SIGKILL is the crash.
const doomedWorkerEnv = "NOESIS_TEST_DOOMED_WORKER"

// TestExactlyOnceWhenAWorkerIsKilledMidWork kills a worker process with
// SIGKILL in the middle of work and lets another finish it: every thought
// yields its narrative and its verdict exactly once.
//
// The first worker's user may not acknowledge the tribunal stage's messages
// (its account denies publishing to that consumer's ack subjects), so every
// verdict it publishes before it dies is one whose thought comes back to the
// second worker: the outputs' de-duplication, not luck in the timing of the
// kill, is what keeps those verdicts from arriving twice. Narratives are
// acknowledged as usual, so the kill also lands among calls in flight.
func TestExactlyOnceWhenAWorkerIsKilledMidWork(t *testing.T) {
	const n = 120
	ns := natstest.RunServerWithOptions(t, &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		Users: []*server.User{
			{Username: "doomed", Password: "doomed-pw", Permissions: &server.Permissions{Publish: &server.SubjectPermission{
				Allow: []string{">"},
				// The acknowledgement subjects of the tribunal consumer, in both of the server's forms.
				Deny: []string{"$JS.ACK.NOESIS_THOUGHTS.tribunal.>", "$JS.ACK.*.*.NOESIS_THOUGHTS.tribunal.>"},
			}}},
			{Username: "worker", Password: "worker-pw"},
			{Username: "watcher", Password: "watcher-pw"},
		}})
	// Clear answers only, slow enough that work is in flight at the kill.
	_, simURL := simtest.Start(t, sim.Config{Shape: "tagged-lines", LatencyScale: 0.02, Seed: 7})
	nc, js := natstest.Connect(t, ns, nats.UserInfo("watcher", "watcher-pw"))
	got := collect(t, nc)

	doomed := startWorkerProcess(t, "TestDoomedWorkerProcess", doomedWorkerEnv+"=1", "NATS_URL="+ns.ClientURL(), "NOESIS_SIM_URL="+simURL)

	// Publish once the doomed worker has made the streams and its consumers.
	eventually(t, 60*time.Second, func() bool {
		_, err := js.Consumer(context.Background(), consumers.StreamThoughts, "tribunal")
		return err == nil
	}, func() string { return "the doomed worker did not start; its output:\n" + doomed.out.String() })
	var events []string
	for i := 0; i < n; i++ {
		th := thought(i, fmt.Sprintf("thought number %d: I will compress the old reports", i))
		th.Content.Depth = 1 + i%3 // no analyses: two outputs a thought
		publishThought(t, js, th)
		events = append(events, th.EventID)
	}
	// Kill it once it has published verdicts it can never acknowledge, and
	// before it has finished the narratives.
	eventually(t, 60*time.Second, func() bool { return got.distinct("verdicts") >= 10 }, func() string {
		return fmt.Sprintf("the doomed worker published %d verdicts; its output:\n%s", got.distinct("verdicts"), doomed.out.String())
	})
	doomed.kill(t)
	// The kill must land among work in flight: narratives (their model is
	// the faster, and an adaptive pool's limit grows only as answers come
	// back, so they may all be done) or verdicts.
	atKill := got.distinct("narratives")
	if atKill >= n && got.distinct("verdicts") >= n {
		t.Fatalf("all %d narratives and verdicts were done before the kill: nothing was in flight", n)
	}
	t.Logf("killed with %d narratives and %d verdicts out, of %d thoughts", atKill, got.distinct("verdicts"), n)

	cfg := crashConfig(t, ns.ClientURL(), simURL)
	cfg.NATSUser, cfg.NATSPassword = "worker", "worker-pw"
	runService(t, cfg)
	got.waitFor(t, 90*time.Second, map[string]int{"narratives": n, "verdicts": n})
	got.settle(t, js)
	got.exactlyOnce(t, "narratives", events)
	got.exactlyOnce(t, "verdicts", events)
	if dl := got.distinct("dlq.narrative") + got.distinct("dlq.tribunal"); dl != 0 {
		t.Errorf("%d dead letters", dl)
	}
}

// TestDoomedWorkerProcess is the worker TestExactlyOnceWhenAWorkerIsKilledMidWork
// starts in a process of its own and kills; run on its own, it does nothing.
func TestDoomedWorkerProcess(t *testing.T) {
	if os.Getenv(doomedWorkerEnv) == "" {
		t.Skip("run by TestExactlyOnceWhenAWorkerIsKilledMidWork")
	}
	cfg := crashConfig(t, os.Getenv("NATS_URL"), os.Getenv("NOESIS_SIM_URL"))
	cfg.NATSUser, cfg.NATSPassword = "doomed", "doomed-pw"
	if _, err := service.Start(context.Background(), cfg, zerolog.New(os.Stderr).Level(zerolog.WarnLevel)); err != nil {
		t.Fatal(err)
	}
	// Work until killed.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
}

// crashConfig is the test config with acknowledgement waits short enough that
// the killed worker's thoughts come back within the test.
func crashConfig(t *testing.T, natsURL, simURL string) config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.NATSURL, cfg.Provider, cfg.SimURL = natsURL, "sim", simURL
	cfg.LLMBackoff, cfg.RetryDelay, cfg.DrainTimeout = 5*time.Millisecond, 10*time.Millisecond, 5*time.Second
	cfg.TribunalDeadline = 6 * time.Second
	for _, tier := range []*config.TierSettings{&cfg.Tier.Fast, &cfg.Tier.Reasoning, &cfg.Tier.Deep} {
		tier.AckWait = 3 * time.Second
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// workerProcess is a worker in a process of its own: this test binary run
// again for one test only, with env added. SIGKILL is its crash; the test's
// end kills it if nothing did.
type workerProcess struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan error
}

// startWorkerProcess runs test in a process of its own.
func startWorkerProcess(t *testing.T, test string, env ...string) *workerProcess {
	t.Helper()
	w := &workerProcess{cmd: exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v"), out: &syncBuffer{}, exited: make(chan error, 1)}
	w.cmd.Env = append(os.Environ(), env...)
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.exited <- w.cmd.Wait() }()
	t.Cleanup(func() { _ = w.cmd.Process.Kill(); <-w.exited })
	return w
}

// kill sends SIGKILL and waits for the process to end; a process that had
// already ended cleanly fails the test.
func (w *workerProcess) kill(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-w.exited; err == nil {
		t.Fatal("the doomed worker exited cleanly; it should have been killed")
	}
	w.exited <- nil // for the cleanup
}
