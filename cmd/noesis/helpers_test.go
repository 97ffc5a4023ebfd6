package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
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

// rig is what a test of the worker runs against: an open JetStream server,
// a simulator, a client connected to the server, and the worker's config
// pointed at both (testConfig). It starts no worker: the test adjusts cfg,
// then starts one or more with runService.
type rig struct {
	ns     *server.Server
	sim    *sim.Server
	simURL string // the simulator's base URL
	cfg    config.Config
	nc     *nats.Conn
	js     jetstream.JetStream
}

// newRig starts a rig whose simulator answers as sc says; all of it stops
// when the test ends.
func newRig(t *testing.T, sc sim.Config) *rig {
	t.Helper()
	ns := natstest.RunServer(t)
	s, simURL := simtest.Start(t, sc)
	nc, js := natstest.Connect(t, ns)
	return &rig{ns: ns, sim: s, simURL: simURL, cfg: testConfig(t, ns, simURL), nc: nc, js: js}
}

// testConfig is the default config pointed at a test NATS server and a
// zero-latency simulator, with fast retries.
func testConfig(t *testing.T, ns *server.Server, simURL string) config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.NATSURL = ns.ClientURL()
	cfg.Provider = "sim"
	cfg.SimURL = simURL
	cfg.LLMBackoff = 5 * time.Millisecond
	cfg.RetryDelay = 10 * time.Millisecond
	cfg.DrainTimeout = 5 * time.Second
	cfg.BreakerCooldown, cfg.TargetBreakerCooldown = 50*time.Millisecond, 50*time.Millisecond
	// Pool concurrency stays at its default: the adaptive limit.
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runService starts a service and stops it, drained, when the test ends.
func runService(t *testing.T, cfg config.Config) *service.Service {
	t.Helper()
	return runServiceLogging(t, cfg, zerolog.NewTestWriter(t), zerolog.WarnLevel)
}

// startService starts a worker that runs until ctx ends; the caller waits.
func startService(t *testing.T, ctx context.Context, cfg config.Config) *service.Service {
	t.Helper()
	svc, err := service.Start(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// runServiceLogging is runService with the log written to w at level.
func runServiceLogging(t *testing.T, cfg config.Config, w io.Writer, level zerolog.Level) *service.Service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := service.Start(ctx, cfg, zerolog.New(w).Level(level))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := svc.Wait(); err != nil {
			t.Errorf("service: %v", err)
		}
	})
	return svc
}

// taggedWorker starts an open NATS server and a worker whose simulated
// judges answer at once in tagged lines, with a 2 s tribunal deadline.
// Tagged answers let the sim: markers in a thought steer the judges: an
// untagged answer that repeated them would be dropped as an echo.
func taggedWorker(t *testing.T) *rig {
	t.Helper()
	r := newRig(t, sim.Config{Shape: "tagged-lines"})
	r.cfg.TribunalDeadline = 2 * time.Second
	runService(t, r.cfg)
	return r
}

// serveConf starts a server under the NATS config file conf, on a free port
// and storing in the test's temporary directory; each of adjust, if any,
// changes the options read from conf first.
func serveConf(t *testing.T, conf string, adjust ...func(*server.Options)) *server.Server {
	t.Helper()
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	opts.Port, opts.StoreDir, opts.NoLog, opts.NoSigs, opts.PidFile = server.RANDOM_PORT, t.TempDir(), true, true, ""
	for _, a := range adjust {
		a(opts)
	}
	return natstest.RunServerWithOptions(t, opts)
}

// workerConfig is testConfig for a worker logged in to ns as the shipped
// config's worker user, against a simulator answering as sc.
func workerConfig(t *testing.T, ns *server.Server, sc sim.Config) config.Config {
	t.Helper()
	_, simURL := simtest.Start(t, sc)
	cfg := testConfig(t, ns, simURL)
	cfg.NATSUser, cfg.NATSPassword = "worker", "worker-pw"
	return cfg
}

// streamsOnly starts an open NATS server with noesis's streams, as sc sets
// them, and no worker, and points the CLI at it (NATS_URL).
func streamsOnly(t *testing.T, sc consumers.StreamsConfig) (*server.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	ns := natstest.RunServer(t)
	nc, js := natstest.Connect(t, ns)
	if err := consumers.EnsureStreams(context.Background(), js, sc); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NATS_URL", ns.ClientURL())
	return ns, nc, js
}

// collector counts every output and dead letter by subject root and event.
type collector struct {
	mu     sync.Mutex
	counts map[string]map[string]int // root (narratives, verdicts, analyses, dlq.<stage>) -> event -> n
	msgs   map[string][]*nats.Msg
	last   time.Time // when the last message arrived
}

func collect(t *testing.T, nc *nats.Conn) *collector {
	t.Helper()
	return collectOn(t, nc, "noesis.>")
}

// collectOn is collect on the given subjects only.
func collectOn(t *testing.T, nc *nats.Conn, subjects ...string) *collector {
	t.Helper()
	c := &collector{counts: map[string]map[string]int{}, msgs: map[string][]*nats.Msg{}}
	handler := func(m *nats.Msg) {
		if strings.HasPrefix(m.Subject, consumers.ThoughtsPrefix) {
			return
		}
		parts := strings.Split(m.Subject, ".")
		root := parts[1]
		event := m.Header.Get(consumers.HeaderEventID)
		if root == "dlq" {
			root = "dlq." + parts[2]
			var th struct {
				EventID string `json:"event_id"`
			}
			_ = json.Unmarshal(m.Data, &th)
			event = th.EventID
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.counts[root] == nil {
			c.counts[root] = map[string]int{}
		}
		c.counts[root][event]++
		c.msgs[root] = append(c.msgs[root], m)
		c.last = time.Now()
	}
	for _, subj := range subjects {
		sub, err := nc.Subscribe(subj, handler)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *collector) distinct(root string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.counts[root])
}

func (c *collector) messages(root string) []*nats.Msg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*nats.Msg(nil), c.msgs[root]...)
}

// syncBuffer is the log and output sink of this package's tests.
type syncBuffer = natstest.Buffer

// eventually is natstest.Eventually: poll until cond holds, or fail after timeout.
var eventually = natstest.Eventually

// waitFor polls until each root has n distinct events, or fails after timeout.
func (c *collector) waitFor(t *testing.T, timeout time.Duration, want map[string]int) {
	t.Helper()
	eventually(t, timeout, func() bool {
		for root, n := range want {
			if c.distinct(root) < n {
				return false
			}
		}
		return true
	}, func() string {
		got := map[string]int{}
		for root := range want {
			got[root] = c.distinct(root)
		}
		return fmt.Sprintf("got %v, want %v", got, want)
	})
}

// settle waits until no thought can yield another output: every stage
// consumer has nothing pending or unacknowledged (an output is published
// before its thought is acked, so a redelivery's duplicate would already be
// on its way), and then no message has arrived for 200 ms (the stream's
// republish in transit). It fails after 20 s.
func (c *collector) settle(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	for _, durable := range []string{"narrative", "tribunal", "analysis"} {
		eventually(t, 20*time.Second, func() bool {
			idle, gone, _ := consumerIdle(js, durable, 0)
			return idle || gone // a stage no process runs has no consumer
		}, func() string {
			_, _, state := consumerIdle(js, durable, 0)
			return "consumer " + durable + " still busy: " + state
		})
	}
	eventually(t, 20*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return time.Since(c.last) >= 200*time.Millisecond
	}, func() string { return "outputs still arriving" })
}

// consumerIdle reports whether a stage consumer has acked at least n
// messages and has none pending or unacknowledged, or is gone, and its state.
func consumerIdle(js jetstream.JetStream, durable string, n uint64) (idle, gone bool, state string) {
	c, err := js.Consumer(context.Background(), consumers.StreamThoughts, durable)
	if err != nil {
		return false, errors.Is(err, jetstream.ErrConsumerNotFound), err.Error()
	}
	info, err := c.Info(context.Background())
	if err != nil {
		return false, false, err.Error()
	}
	idle = info.AckFloor.Stream >= n && info.NumAckPending == 0 && info.NumPending == 0
	return idle, false, fmt.Sprintf("ack floor %d, pending %d, ack pending %d", info.AckFloor.Stream, info.NumPending, info.NumAckPending)
}

// exactlyOnce fails unless every event under root arrived exactly once.
func (c *collector) exactlyOnce(t *testing.T, root string, events []string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range events {
		if n := c.counts[root][e]; n != 1 {
			t.Errorf("%s for %s arrived %d times, want 1", root, e, n)
		}
	}
	if len(c.counts[root]) != len(events) {
		t.Errorf("%s: %d distinct events, want %d", root, len(c.counts[root]), len(events))
	}
}

func publishThought(t *testing.T, js jetstream.JetStream, th pipeline.Thought) {
	t.Helper()
	data, err := json.Marshal(th)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), consumers.ThoughtSubject(th.AgentID), data, jetstream.WithMsgID(th.EventID)); err != nil {
		t.Fatal(err)
	}
}

func thought(i int, text string) pipeline.Thought {
	return pipeline.Thought{EventID: fmt.Sprintf("evt-%04d", i), AgentID: fmt.Sprintf("daimon-%d", i%4), Content: pipeline.Content{UserInput: text, Depth: 1 + i%5}}
}

// waitConsumerIdle waits until a durable consumer has acked at least n messages and has none pending.
func waitConsumerIdle(t *testing.T, js jetstream.JetStream, durable string, n uint64) {
	t.Helper()
	eventually(t, 20*time.Second, func() bool { idle, _, _ := consumerIdle(js, durable, n); return idle },
		func() string {
			_, _, state := consumerIdle(js, durable, n)
			return fmt.Sprintf("consumer %s did not finish %d messages: %s", durable, n, state)
		})
}
