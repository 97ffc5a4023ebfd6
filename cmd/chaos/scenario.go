package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

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

// runScenario runs one scenario on a system of its own and returns its
// row of the table; on failure the system's logs are kept and shown.
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
	if err := s.start(o, sc.nodes); err != nil {
		return fail("%v", err)
	}
	sub := newSubscriber(s.nc)
	defer sub.close()
	thoughts := sc.thoughts(o.n)
	r.Sent = len(thoughts)
	if err := s.publishAndDisrupt(sc, thoughts); err != nil {
		return fail("%v", err)
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
	// A worker killed or stopped, or a server restarted, is no thought's
	// fault: none may be dead-lettered for it (the scenarios with a check of
	// their own expect letters, or check something else).
	if sc.check == nil && !r.Failed {
		r.Check += ", 0 dead letters"
		if r.DeadLetters > 0 {
			r.Failed, r.Check = true, "FAILED: "+r.Check
		}
	}
	if sc.check != nil && !r.Failed {
		sc.check(s, &r)
	}
	return r
}

// publishAndDisrupt publishes the thoughts and, once half their outputs
// are stored (at once when the scenario is early), breaks what the
// scenario breaks; it returns when every thought is published.
func (s *stage) publishAndDisrupt(sc scenario, thoughts []pipeline.Thought) error {
	if sc.name == "provider faults" {
		if err := s.setFaults(sim.Faults{RateLimitRate: 1}); err != nil { // a 429 storm as the run begins
			return err
		}
	}
	expected := 2 * len(thoughts)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	pubErr := make(chan error, 1)
	go func() { pubErr <- publishAll(ctx, s.js, thoughts) }()
	if sc.disrupt != nil {
		half := expected / 2
		if sc.early {
			half = 0
		}
		if err := waitStored(s.js, half, 120*time.Second); err != nil {
			stop()
			<-pubErr
			return fmt.Errorf("before the disruption: %v", err)
		}
		if err := sc.disrupt(s); err != nil {
			stop()
			<-pubErr
			return fmt.Errorf("disruption: %v", err)
		}
	}
	if err := <-pubErr; err != nil {
		return fmt.Errorf("publish: %v", err)
	}
	return nil
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
