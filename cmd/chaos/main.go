// Command chaos runs noesis through the failures a stream processor must
// survive, with real processes: nats-server (single or a three-node cluster),
// the simulator, and several `noesis serve` workers. For each scenario it
// publishes thoughts, breaks something halfway, waits, then reads the streams
// and prints a table: thoughts sent, outputs, lost, duplicates, dead letters
// and upstream model calls. It exits non-zero when a scenario loses or
// duplicates anything, or misses its own expectation.
//
//	go run ./cmd/chaos -noesis bin/noesis -n 5000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/cmd/internal/proc"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

type options struct {
	noesis, natsServer string
	n                  int
	only               string
	keep               bool
	// auth, when set, is a NATS config (nats-auth.conf) whose accounts block
	// every server of the scenarios gets: the workers run as its worker user,
	// the harness as its admin.
	auth     string
	accounts string // the accounts block read from auth
}

// Passwords of the users in the auth config, for the scenarios' processes.
const (
	chaosWorkerPassword = "chaos-worker-pw"
	chaosAdminPassword  = "chaos-admin-pw"
)

func main() {
	var o options
	flag.StringVar(&o.noesis, "noesis", "bin/noesis", "the noesis binary")
	flag.StringVar(&o.natsServer, "nats-server", "", "the nats-server binary (default: from PATH or GOPATH/bin)")
	flag.IntVar(&o.n, "n", 5000, "thoughts per scenario")
	flag.StringVar(&o.only, "only", "", "run only the scenarios whose name contains this")
	flag.BoolVar(&o.keep, "keep", false, "keep the scenario directories (logs, data)")
	flag.StringVar(&o.auth, "auth", "", "run every server with this config's accounts block (nats-auth.conf): workers as worker, the harness as admin")
	flag.Parse()
	if o.auth != "" {
		text, err := os.ReadFile(o.auth)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		i := strings.Index(string(text), "\naccounts {")
		if i < 0 {
			fmt.Fprintf(os.Stderr, "%s has no accounts block\n", o.auth)
			os.Exit(2)
		}
		o.accounts = string(text[i:])
		// The servers expand these from their environment, which they inherit.
		os.Setenv("NOESIS_WORKER_PASSWORD", chaosWorkerPassword)
		os.Setenv("NOESIS_ADMIN_PASSWORD", chaosAdminPassword)
		os.Setenv("NOESIS_AGENT_PASSWORD", "chaos-agent-pw")
		os.Setenv("NOESIS_REVIEWER_PASSWORD", "chaos-reviewer-pw")
	}
	if o.natsServer == "" {
		o.natsServer = findBinary("nats-server")
	}
	results, failed := run(o)
	printTable(os.Stdout, results)
	if failed {
		os.Exit(1)
	}
}

func findBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	return filepath.Join(strings.TrimSpace(string(gopath)), "bin", name)
}

// result is one row of the table.
type result struct {
	Scenario    string
	Sent        int
	Outputs     int
	Lost        int
	Duplicates  int
	DeadLetters int
	Upstream    int64
	Abstaining  int // verdicts in which some judge abstained
	Took        time.Duration
	Check       string // what the scenario expects, and whether it held
	Failed      bool
}

type scenario struct {
	name  string
	nodes int // nats-servers
	// build returns the thoughts to publish.
	thoughts func(n int) []pipeline.Thought
	// disrupt breaks something once half the outputs are in (at once when early is set).
	disrupt func(s *stage) error
	early   bool
	// check adds the scenario's own expectation to its result.
	check func(s *stage, r *result)
}

func run(o options) ([]result, bool) {
	scenarios := []scenario{
		{name: "kill -9 one of two workers", nodes: 1, thoughts: plainThoughts,
			disrupt: func(s *stage) error { s.workers[0].Kill9(); return nil }},
		{name: "SIGTERM one of two workers", nodes: 1, thoughts: plainThoughts,
			disrupt: func(s *stage) error { return s.workers[0].Term(60 * time.Second) }},
		{name: "restart the NATS server", nodes: 1, thoughts: plainThoughts,
			disrupt: func(s *stage) error {
				s.nats[0].p.Kill9()
				time.Sleep(time.Second)
				return s.nats[0].start(o.natsServer, s.dir)
			}},
		{name: "kill the stream leader (3 nodes, R3)", nodes: 3, thoughts: plainThoughts, disrupt: killLeader},
		{name: "provider faults", nodes: 1, thoughts: faultThoughts, disrupt: stormOver, early: true, check: checkFaults},
		{name: "50 identical thoughts, cold cache", nodes: 1, thoughts: identicalThoughts, check: checkCoalesced},
	}
	var results []result
	failed := false
	for _, sc := range scenarios {
		if o.only != "" && !strings.Contains(sc.name, o.only) {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s\n", sc.name)
		r := runScenario(o, sc)
		fmt.Fprintf(os.Stderr, "   sent %d, outputs %d, lost %d, duplicates %d, dead letters %d, upstream calls %d, %s (%s)\n",
			r.Sent, r.Outputs, r.Lost, r.Duplicates, r.DeadLetters, r.Upstream, r.Check, r.Took.Round(time.Millisecond))
		failed = failed || r.Failed
		results = append(results, r)
	}
	return results, failed
}

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

func runScenario(o options, sc scenario) (r result) {
	r.Scenario = sc.name
	started := time.Now()
	defer func() { r.Took = time.Since(started) }()
	fail := func(format string, args ...any) result {
		r.Failed, r.Check = true, "ERROR: "+fmt.Sprintf(format, args...)
		return r
	}
	dir, err := os.MkdirTemp("", "noesis-chaos-")
	if err != nil {
		return fail("%v", err)
	}
	s := &stage{dir: dir}
	defer func() {
		s.stop()
		if r.Failed {
			fmt.Fprintf(os.Stderr, "   logs kept in %s\n", dir)
			for _, w := range s.workers {
				fmt.Fprintf(os.Stderr, "   --- %s:\n%s\n", w.Name, w.Tail(15))
			}
		} else if !o.keep {
			os.RemoveAll(dir)
		}
	}()

	if s.nats, err = newNATS(dir, sc.nodes, o.accounts); err != nil {
		return fail("%v", err)
	}
	for _, n := range s.nats {
		if err := n.start(o.natsServer, dir); err != nil {
			return fail("%s: %v", n.name, err)
		}
	}
	simPort := freePort()
	s.simURL = fmt.Sprintf("http://127.0.0.1:%d", simPort)
	if s.sim, err = proc.Logged(dir, "sim", nil, o.noesis, "sim", "--env-file", "/dev/null", "--listen", fmt.Sprintf("127.0.0.1:%d", simPort),
		"--latency-scale", "0.005", "--retry-after", "1s"); err != nil {
		return fail("%v", err)
	}
	if err := waitPort(fmt.Sprintf("127.0.0.1:%d", simPort), 10*time.Second); err != nil {
		return fail("simulator: %v", err)
	}
	replicas := "1"
	if sc.nodes > 1 {
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
	for i := 0; i < 2; i++ {
		w, err := proc.Logged(dir, fmt.Sprintf("worker-%d", i+1), env, o.noesis, "serve", "--env-file", "/dev/null")
		if err != nil {
			return fail("%v", err)
		}
		s.workers = append(s.workers, w)
	}
	if s.nc, err = nats.Connect(s.urls(), connect...); err != nil {
		return fail("connect: %v", err)
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		return fail("%v", err)
	}
	if err := waitConsumers(s.js, 90*time.Second); err != nil {
		return fail("%v", err)
	}

	sub := newSubscriber(s.nc)
	defer sub.close()
	thoughts := sc.thoughts(o.n)
	r.Sent = len(thoughts)
	if sc.name == "provider faults" {
		if err := s.setFaults(sim.Faults{RateLimitRate: 1}); err != nil { // a 429 storm as the run begins
			return fail("%v", err)
		}
	}
	expected := 2 * len(thoughts)
	pubErr := make(chan error, 1)
	go func() { pubErr <- publishAll(s.js, thoughts) }()
	if sc.disrupt != nil {
		half := expected / 2
		if sc.early {
			half = 0
		}
		if err := waitStored(s.js, half, 120*time.Second); err != nil {
			return fail("before the disruption: %v", err)
		}
		if err := sc.disrupt(s); err != nil {
			return fail("disruption: %v", err)
		}
	}
	if err := <-pubErr; err != nil {
		return fail("publish: %v", err)
	}
	tally, err := settle(s.js, thoughts, 180*time.Second)
	if err != nil {
		return fail("%v", err)
	}
	time.Sleep(500 * time.Millisecond) // let any late duplicate reach the subscriber
	r.Outputs, r.DeadLetters, r.Lost, r.Abstaining = tally.outputs, tally.letters, tally.lost, tally.abstaining
	if len(tally.reasons) > 0 {
		fmt.Printf("   abstentions by reason: %v\n", tally.reasons)
	}
	r.Duplicates = tally.duplicates + sub.duplicates()
	if st, err := s.simStats(); err == nil {
		r.Upstream = st.Requests
	}
	r.Check = "0 lost, 0 duplicates"
	if r.Lost > 0 || r.Duplicates > 0 {
		r.Failed = true
		r.Check = "FAILED: " + r.Check
	}
	if sc.check != nil && !r.Failed {
		sc.check(s, &r)
	}
	return r
}

func plainThoughts(n int) []pipeline.Thought {
	out := make([]pipeline.Thought, n)
	for i := range out {
		out[i] = pipeline.Thought{EventID: fmt.Sprintf("chaos-%05d", i), AgentID: fmt.Sprintf("daimon-%d", i%8),
			Content: pipeline.Content{UserInput: fmt.Sprintf("thought %d: I will compact the archive", i), Depth: 1}}
	}
	return out
}

const faulty = 20 // thoughts per fault kind in the provider-faults scenario

func faultThoughts(n int) []pipeline.Thought {
	out := plainThoughts(n)
	for i := 0; i < faulty && 3*faulty <= n; i++ {
		out[i].Content.UserInput += " sim:http=500@narrative"         // persistent 5xx: dead letters
		out[faulty+i].Content.UserInput += " sim:hang@narrative"      // hangs past the timeout: dead letters
		out[2*faulty+i].Content.UserInput += " sim:malformed@veritas" // VERITAS abstains
	}
	return out
}

func identicalThoughts(int) []pipeline.Thought {
	out := make([]pipeline.Thought, 50)
	for i := range out {
		out[i] = pipeline.Thought{EventID: fmt.Sprintf("same-%02d", i), AgentID: "daimon-1",
			Content: pipeline.Content{UserInput: "the very same thought, fifty times", Depth: 1}}
	}
	return out
}

func killLeader(s *stage) error {
	info, err := streamInfo(s.js, consumers.StreamThoughts)
	if err != nil {
		return err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return fmt.Errorf("no stream leader")
	}
	for _, n := range s.nats {
		if n.name == info.Cluster.Leader {
			fmt.Fprintf(os.Stderr, "   killing %s, the leader of %s\n", n.name, consumers.StreamThoughts)
			n.p.Kill9()
			return nil
		}
	}
	return fmt.Errorf("leader %q is not one of ours", info.Cluster.Leader)
}

// stormOver ends the 429 storm after 3 s.
func stormOver(s *stage) error {
	time.Sleep(3 * time.Second)
	return s.setFaults(sim.Faults{})
}

func checkFaults(s *stage, r *result) {
	st, err := s.simStats()
	if err != nil {
		r.Failed, r.Check = true, err.Error()
		return
	}
	// 20 thoughts x 3 deliveries x 3 tries for 5xx; the same for hangs (each try times out).
	want := int64(faulty * 3 * 3)
	ok := r.DeadLetters == 2*faulty && st.Faults["500"] == want && st.Faults["429"] > 0
	r.Check = fmt.Sprintf("%d dead letters (want %d), %d calls answered 500 (want %d = 20 x 3 deliveries x 3 tries), %d answered 429, %d malformed; 0 lost, 0 duplicates",
		r.DeadLetters, 2*faulty, st.Faults["500"], want, st.Faults["429"], st.Faults["malformed"])
	if !ok {
		r.Failed, r.Check = true, "FAILED: "+r.Check
	}
}

func checkCoalesced(s *stage, r *result) {
	st, err := s.simStats()
	if err != nil {
		r.Failed, r.Check = true, err.Error()
		return
	}
	// One narrative and three judge calls in all: coalesced in each process,
	// and across the two through the shared cache's claims.
	ok := st.PerCaller["narrative"] == 1 && st.PerCaller["veritas"] == 1 && st.PerCaller["sophia"] == 1 && st.PerCaller["dike"] == 1
	r.Check = fmt.Sprintf("upstream calls per caller %v (want 1 each, across both processes); 0 lost, 0 duplicates", st.PerCaller)
	if !ok {
		r.Failed, r.Check = true, "FAILED: "+r.Check
	}
}

func streamInfo(js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}
