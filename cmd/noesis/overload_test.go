package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/cmd/internal/service"
	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// The provider of these tests generates 64 answers at once per model and
// queues the rest, so its latency grows with what it is sent; a call that
// waits past the 2 s per-call timeout in its queue fails. A worker that
// sends more than the provider generates sees its calls time out while the
// provider still answers; it must shrink, and no breaker may open.
const (
	queueingCapacity = 64
	burstThoughts    = 1000
	overloadedWorker = "NOESIS_TEST_OVERLOADED_WORKER"
)

// queueingProvider is that provider, at a twentieth of the seed's latencies
// (a judge's answer takes 97 ms, a narrative's 57 ms).
func queueingProvider(t *testing.T) string {
	t.Helper()
	_, url := simtest.Start(t, sim.Config{LatencyScale: 0.05, Lengths: sim.LengthsSeed, Capacity: queueingCapacity, Seed: 3})
	return url
}

// overloadConfig is the test config against it: every default that governs
// load (the adaptive limit, its slow start, the breakers' thresholds), a
// 2 s per-call timeout, and acknowledgement waits short enough that a killed
// worker's thoughts come back within the test.
func overloadConfig(t *testing.T, natsURL, simURL string) config.Config {
	t.Helper()
	cfg := crashConfig(t, natsURL, simURL)
	cfg.LLMTimeout = 2 * time.Second
	cfg.LLMBackoff = 100 * time.Millisecond // the wait before an overloaded call is asked again
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// publishBurst publishes n thoughts at once (two outputs each).
func publishBurst(t *testing.T, js jetstream.JetStream, n int) []string {
	t.Helper()
	var events []string
	for i := range n {
		th := thought(i, fmt.Sprintf("burst thought %d: I will rotate the keys of the staging cluster", i))
		th.Content.Depth = 1 + i%3 // no analyses
		publishThought(t, js, th)
		events = append(events, th.EventID)
	}
	return events
}

// noBreakerOpened fails if a worker's log says a breaker changed state.
func noBreakerOpened(t *testing.T, who, log string) {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "circuit breaker changed state") {
			t.Errorf("%s: a breaker changed state under load: %s", who, line)
		}
	}
}

// burstDrained waits for every narrative and verdict of the burst, and fails
// unless each verdict came once, none was dead-lettered and the worker's log
// (who) shows no breaker opened.
func burstDrained(t *testing.T, got *collector, js jetstream.JetStream, events []string, who, log string) {
	t.Helper()
	got.waitFor(t, 5*time.Minute, map[string]int{"narratives": burstThoughts, "verdicts": burstThoughts})
	got.settle(t, js)
	got.exactlyOnce(t, "verdicts", events)
	if dl := got.distinct("dlq.narrative") + got.distinct("dlq.tribunal"); dl != 0 {
		t.Errorf("%d dead letters", dl)
	}
	noBreakerOpened(t, who, log)
}

// A burst of 1,000 thoughts waiting for a worker, against a provider that
// generates 64 answers at once, drains at the provider's pace: every
// narrative and verdict, no breaker opened, no dead letter. (With slow start
// doubling every 100 ms and timeouts counted as failures, the judges'
// breakers opened.)
func TestABurstDrainsAtTheProvidersPace(t *testing.T) {
	ns := natstest.RunServer(t)
	cfg := overloadConfig(t, ns.ClientURL(), queueingProvider(t))
	nc, js := natstest.Connect(t, ns)
	got := collect(t, nc)
	// The burst waits for the worker, as after a restart: it takes the
	// thoughts as fast as its limit lets it.
	if err := consumers.EnsureStreams(context.Background(), js, cfg.Streams()); err != nil {
		t.Fatal(err)
	}
	events := publishBurst(t, js, burstThoughts)
	log := &syncBuffer{}
	runServiceLogging(t, cfg, log, zerolog.WarnLevel)
	burstDrained(t, got, js, events, "worker", log.String())
}

// Two workers take a burst of 1,000 thoughts; one is killed with SIGKILL
// once a tenth of the verdicts are out: its thoughts come back to the other
// after their ack wait, on top of the burst, and drain at the provider's
// pace too: every verdict arrives once, no breaker opens, no dead letter.
func TestRedeliveriesAfterACrashDrainAtTheProvidersPace(t *testing.T) {
	ns := natstest.RunServer(t)
	simURL := queueingProvider(t)
	nc, js := natstest.Connect(t, ns)
	got := collect(t, nc)
	cfg := overloadConfig(t, ns.ClientURL(), simURL)
	if err := consumers.EnsureStreams(context.Background(), js, cfg.Streams()); err != nil {
		t.Fatal(err)
	}
	events := publishBurst(t, js, burstThoughts)

	doomed := startWorkerProcess(t, "TestOverloadedWorkerProcess", overloadedWorker+"=1", "NATS_URL="+ns.ClientURL(), "NOESIS_SIM_URL="+simURL)

	eventually(t, 60*time.Second, func() bool { return strings.Contains(doomed.out.String(), "overloaded worker ready") },
		func() string { return "the doomed worker did not start; its output:\n" + doomed.out.String() })
	log := &syncBuffer{}
	runServiceLogging(t, cfg, log, zerolog.WarnLevel)
	eventually(t, 5*time.Minute, func() bool { return got.distinct("verdicts") >= burstThoughts/10 }, func() string {
		return fmt.Sprintf("%d verdicts before the kill", got.distinct("verdicts"))
	})
	doomed.kill(t)
	killed := time.Now()
	atKill := got.distinct("verdicts")
	if atKill >= burstThoughts {
		t.Fatalf("all %d verdicts were out before the kill: nothing was in flight", burstThoughts)
	}
	t.Logf("killed with %d of %d verdicts out", atKill, burstThoughts)
	got.waitFor(t, 5*time.Minute, map[string]int{"verdicts": burstThoughts})
	// A figure, not a bound: the goal is every verdict within AckWait + 60 s.
	t.Logf("every verdict %.1f s after the kill (the tribunal's AckWait %s)", time.Since(killed).Seconds(), cfg.AckWaitFor(pipeline.TierReasoning))
	burstDrained(t, got, js, events, "surviving worker", log.String())
	noBreakerOpened(t, "killed worker, before the kill", doomed.out.String())
}

// TestOverloadedWorkerProcess is the worker that
// TestRedeliveriesAfterACrashDrainAtTheProvidersPace starts in a process of
// its own and kills; run on its own, it does nothing.
func TestOverloadedWorkerProcess(t *testing.T) {
	if os.Getenv(overloadedWorker) == "" {
		t.Skip("run by TestRedeliveriesAfterACrashDrainAtTheProvidersPace")
	}
	cfg := overloadConfig(t, os.Getenv("NATS_URL"), os.Getenv("NOESIS_SIM_URL"))
	if _, err := service.Start(context.Background(), cfg, zerolog.New(os.Stderr).Level(zerolog.WarnLevel)); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(os.Stderr, "overloaded worker ready")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop // work until killed
}
