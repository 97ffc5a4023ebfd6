package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/cmd/internal/proc"
	"github.com/noesis-dev/noesis/router/sim"
)

// stage is a scenario's running system.
type stage struct {
	dir     string
	nats    []*natsNode
	sim     *proc.Proc
	simURL  string
	workers []*proc.Proc
	nc      *nats.Conn
	js      jetstream.JetStream
}

func (s *stage) urls() string {
	var u []string
	for _, n := range s.nats {
		u = append(u, n.url())
	}
	return strings.Join(u, ",")
}

func (s *stage) stop() {
	for _, w := range s.workers {
		w.Stop(20 * time.Second)
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.sim != nil {
		s.sim.Stop(20 * time.Second)
	}
	for _, n := range s.nats {
		if n.p != nil {
			n.p.Stop(20 * time.Second)
		}
	}
}

func (s *stage) simStats() (sim.Stats, error) {
	var st sim.Stats
	resp, err := http.Get(s.simURL + "/sim/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (s *stage) setFaults(f sim.Faults) error {
	b, _ := json.Marshal(f)
	resp, err := http.Post(s.simURL+"/sim/faults", "application/json", strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("set faults: HTTP %d", resp.StatusCode)
	}
	return nil
}

// start starts the scenario's system in s.dir: nodes nats-servers, the
// simulator and two workers, then the harness's own connection, and waits
// for the workers' consumers. What it started, s.stop stops, even when it
// fails part-way.
func (s *stage) start(o options, nodes int) error {
	var err error
	if s.nats, err = newNATS(s.dir, nodes, o.accounts); err != nil {
		return err
	}
	for _, n := range s.nats {
		if err := n.start(o.natsServer, s.dir); err != nil {
			return fmt.Errorf("%s: %v", n.name, err)
		}
	}
	if err := s.startSim(o); err != nil {
		return err
	}
	env, connect := s.workerEnv(o, nodes)
	for i := 0; i < 2; i++ {
		w, err := proc.Logged(s.dir, fmt.Sprintf("worker-%d", i+1), env, o.noesis, "serve", "--env-file", "/dev/null")
		if err != nil {
			return err
		}
		s.workers = append(s.workers, w)
	}
	if s.nc, err = nats.Connect(s.urls(), connect...); err != nil {
		return fmt.Errorf("connect: %v", err)
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		return err
	}
	return waitConsumers(s.js, 90*time.Second)
}

// startSim starts `noesis sim` on a free port, at a fraction of the seed's
// latencies, and waits until it listens.
func (s *stage) startSim(o options) error {
	simPort := freePort()
	s.simURL = fmt.Sprintf("http://127.0.0.1:%d", simPort)
	var err error
	if s.sim, err = proc.Logged(s.dir, "sim", nil, o.noesis, "sim", "--env-file", "/dev/null", "--listen", fmt.Sprintf("127.0.0.1:%d", simPort),
		"--latency-scale", "0.005", "--retry-after", "1s"); err != nil {
		return err
	}
	if err := waitPort(fmt.Sprintf("127.0.0.1:%d", simPort), 10*time.Second); err != nil {
		return fmt.Errorf("simulator: %v", err)
	}
	return nil
}

// workerEnv is the workers' settings (short waits and timeouts, so the
// scenarios finish in minutes) and the harness's connection options.
func (s *stage) workerEnv(o options, nodes int) ([]string, []nats.Option) {
	replicas := "1"
	if nodes > 1 {
		replicas = "3"
	}
	env := []string{"NATS_URL=" + s.urls(), "LLM_PROVIDER=sim", "NOESIS_SIM_URL=" + s.simURL + "/v1", "NOESIS_LOG_FORMAT=json", "NOESIS_LOG_LEVEL=warn",
		"NOESIS_STREAM_REPLICAS=" + replicas, "NOESIS_FAST_ACK_WAIT=5s", "NOESIS_REASONING_ACK_WAIT=6s", "NOESIS_DEEP_ACK_WAIT=6s",
		// Pool concurrency stays at its default, the adaptive limit.
		"NOESIS_MAX_DELIVER=3", "NOESIS_RETRY_DELAY=100ms", "NOESIS_LLM_TIMEOUT=1s", "NOESIS_LLM_BACKOFF=50ms",
		"NOESIS_JUDGE_VERITAS_TIMEOUT=3s", "NOESIS_JUDGE_DIKE_TIMEOUT=3s", "NOESIS_TRIBUNAL_DEADLINE=15s", "NOESIS_JUDGE_BREAKER_COOLDOWN=1s", "NOESIS_DRAIN_TIMEOUT=20s",
		// The scenarios hold delivery to account; a model target's breaker, which
		// would skip the narrator after the 20 poisoned thoughts in a row, is
		// tested on its own (TestFallbackBreakerAndModalColdStart).
		"NOESIS_TARGET_BREAKER_FAILURES=1000"}
	connect := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}
	if o.auth != "" {
		env = append(env, "NATS_USER=worker", "NATS_PASSWORD="+chaosWorkerPassword)
		connect = append(connect, nats.UserInfo("admin", chaosAdminPassword))
	}
	return env, connect
}
