package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/docs/contract"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// waitQueued waits until the review queue, read as js, holds n reviews, and
// returns them.
func waitQueued(t *testing.T, js jetstream.JetStream, n int, within time.Duration) []review.Summary {
	t.Helper()
	var got []review.Summary
	eventually(t, within, func() bool {
		x, err := review.Load(context.Background(), js)
		if err != nil {
			t.Fatal(err)
		}
		got = x.List(false)
		return len(got) >= n
	}, func() string { return fmt.Sprintf("%d reviews queued, want %d", len(got), n) })
	return got
}

// Under the shipped nats-auth.conf: a verdict that requires review is
// queued by the worker; the reviewer lists it and decides it with `noesis
// review`; the agent hears the decision once, as itself, and no other agent
// does; the reviewer can do nothing else, and neither an agent nor the
// worker can decide.
func TestReviewUnderShippedAuth(t *testing.T) {
	ns, seeds, _ := authServer(t)
	cfg := workerConfig(t, ns, sim.Config{Shape: "tagged-lines"})
	cfg.MetricsAddr = "127.0.0.1:0"
	svc := runService(t, cfg)
	gauge := func() string { // the review gauges' lines in /metrics
		resp, err := http.Get("http://" + svc.MetricsAddr() + "/metrics")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "noesis_reviews_") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "; ")
	}

	var dv, av, rv, wv violations
	daimon, djs := connectAgent(t, ns, "daimon-1", nats.UserInfo("daimon-1", "agent-pw"), &dv)
	alice, _ := connectAgent(t, ns, "alice", agentAuth(t, seeds, "alice"), &av)
	dgot := collectOn(t, daimon, "noesis.reviews.daimon-1", "noesis.verdicts.daimon-1")
	agot := collectOn(t, alice, "noesis.reviews.alice")
	reviewer, rjs := natstest.Connect(t, ns, nats.UserInfo("reviewer", "reviewer-pw"), nats.ErrorHandler(rv.handler))

	th := thought(1, "maybe ship the untested migration on a hunch")
	th.EventID, th.AgentID, th.Content.Depth = "rev-1", "daimon-1", 1
	publishThought(t, djs, th)
	dgot.waitFor(t, 30*time.Second, map[string]int{"verdicts": 1})
	queued := waitQueued(t, rjs, 1, 5*time.Second)[0]
	if queued.EventID != "rev-1" || queued.AgentID != "daimon-1" || queued.VerdictDecision != "review" {
		t.Fatalf("queued %+v; want daimon-1's rev-1 at review", queued)
	}

	eventually(t, 5*time.Second, func() bool { return strings.Contains(gauge(), "noesis_reviews_waiting 1") },
		func() string { return "metrics: " + gauge() })
	if g := gauge(); strings.Contains(g, "noesis_reviews_oldest_waiting_seconds 0;") || !strings.Contains(g, "noesis_reviews_oldest_waiting_seconds") {
		t.Errorf("metrics: %s; want the oldest review's age", g)
	}

	t.Setenv("NATS_URL", ns.ClientURL())
	t.Setenv("NATS_USER", "reviewer")
	t.Setenv("NATS_PASSWORD", "reviewer-pw")
	out, err := runCLI(t, "", "review", "list")
	if err != nil || !strings.Contains(out, queued.ID) || !strings.Contains(out, "rev-1") || !strings.Contains(out, "1 waiting") {
		t.Fatalf("review list: %v\n%s", err, out)
	}
	out, err = runCLI(t, "", "review", "show", queued.ID)
	if err != nil || !strings.Contains(out, "maybe ship the untested migration") || !strings.Contains(out, "VERITAS") {
		t.Fatalf("review show: %v\n%s", err, out)
	}
	if out, err = runCLI(t, "", "review", "decide", queued.ID, "fail", "--note", "not on a hunch"); err != nil || !strings.Contains(out, "decided fail") {
		t.Fatalf("review decide: %v\n%s", err, out)
	}
	if _, err = runCLI(t, "", "review", "decide", queued.ID, "pass", "--note", "fine"); err == nil || !strings.Contains(err.Error(), "already decided by reviewer at") {
		t.Fatalf("a second decision: %v; want 'already decided by reviewer at ...'", err)
	}

	eventually(t, 5*time.Second, func() bool { return strings.Contains(gauge(), "noesis_reviews_waiting 0") },
		func() string { return "metrics after the decision: " + gauge() })

	// The agent hears it once, as itself; alice hears nothing.
	dgot.waitFor(t, 5*time.Second, map[string]int{"reviews": 1})
	schemas, err := contract.Schemas()
	if err != nil {
		t.Fatal(err)
	}
	msg := dgot.messages("reviews")[0]
	var d review.Ruling
	if err := json.Unmarshal(msg.Data, &d); err != nil || d.EventID != "rev-1" || d.Decision != "fail" || d.Note != "not on a hunch" ||
		d.Reviewer != "reviewer" || d.VerdictDecision != "review" || d.AgentID != "daimon-1" {
		t.Fatalf("daimon-1 heard %s (%v)", msg.Data, err)
	}
	if err := contract.Validate(schemas, contract.ReviewDecision, msg.Data); err != nil {
		t.Error(err)
	}

	// Nothing else for the reviewer: no thoughts, no other stream, no
	// outputs, no forged review.
	if err := reviewer.Publish("noesis.thoughts.daimon-1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	rv.waitFor(t, `Publish to "noesis.thoughts.daimon-1"`)
	if _, err := reviewer.Subscribe("noesis.verdicts.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	rv.waitFor(t, `Subscription to "noesis.verdicts.>"`)
	if err := reviewer.Publish(review.QueuedSubject("0123456789abcdef"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	rv.waitFor(t, `Publish to "_noesis.review.queued.0123456789abcdef"`)
	for _, stream := range []string{"NOESIS_THOUGHTS", "NOESIS_OUTPUTS", "NOESIS_DLQ"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := rjs.Stream(ctx, stream)
		cancel()
		if err == nil {
			t.Errorf("the reviewer read %s", stream)
		}
	}

	// Neither an agent nor the worker can decide.
	if err := daimon.Publish(review.DecidedSubject("daimon-1", queued.ID), []byte(`{"decision":"pass"}`)); err != nil {
		t.Fatal(err)
	}
	dv.waitFor(t, `Publish to "_noesis.store.reviews.daimon-1.`+queued.ID+`"`)
	worker, _ := natstest.Connect(t, ns, nats.UserInfo("worker", "worker-pw"), nats.ErrorHandler(wv.handler))
	if err := worker.Publish(review.DecidedSubject("daimon-1", queued.ID), []byte(`{"decision":"pass"}`)); err != nil {
		t.Fatal(err)
	}
	wv.waitFor(t, `Publish to "_noesis.store.reviews.daimon-1.`+queued.ID+`"`)
	t.Setenv("NATS_USER", "daimon-1")
	t.Setenv("NATS_PASSWORD", "agent-pw")
	if _, err := runCLI(t, "", "review", "decide", queued.ID, "pass", "--note", "me"); err == nil {
		t.Error("an agent decided a review with noesis review decide")
	}

	// Still one decision, and daimon-1 heard it once; alice nothing. A
	// second verdict's decision, heard after, proves nothing more was on
	// the way (one stream's messages arrive in order).
	th2 := thought(2, "maybe try the experimental cache")
	th2.EventID, th2.AgentID, th2.Content.Depth = "rev-2", "daimon-1", 1
	publishThought(t, djs, th2)
	second := waitQueued(t, rjs, 2, 30*time.Second)
	for _, s := range second {
		if s.EventID == "rev-2" {
			if _, err := review.NewDesk(rjs).Decide(context.Background(), s.ID, review.Choice{Decision: "pass", Note: "ok", Reviewer: "reviewer"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	dgot.waitFor(t, 5*time.Second, map[string]int{"reviews": 2})
	if n := dgot.distinct("reviews"); n != 2 || len(dgot.messages("reviews")) != 2 {
		t.Errorf("daimon-1 heard %d decisions (%d distinct); want 2", len(dgot.messages("reviews")), n)
	}
	if n := len(agot.messages("reviews")); n != 0 {
		t.Errorf("alice heard %d of daimon-1's decisions", n)
	}
	if errs := av.errs; len(errs) > 0 {
		t.Logf("alice's errors: %v", errs)
	}
}

// A restart of the worker and of NATS (on the same store) loses no review,
// and queues none twice.
func TestReviewsSurviveRestarts(t *testing.T) {
	dir, port := t.TempDir(), natstestFreePort(t)
	start := func() *server.Server {
		return natstest.RunServerWithOptions(t, &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	}
	ns := start()
	_, simURL := simtest.Start(t, sim.Config{Shape: "tagged-lines"})
	cfg := testConfig(t, ns, simURL)
	ctx, stop := context.WithCancel(context.Background())
	svc := startService(t, ctx, cfg)
	_, js := natstest.Connect(t, ns, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))

	const n = 12
	for i := range n {
		th := thought(100+i, "maybe run the untested script")
		th.EventID, th.AgentID, th.Content.Depth = fmt.Sprintf("restart-%d", i), "daimon-1", 1
		publishThought(t, js, th)
	}
	waitQueued(t, js, 3, 30*time.Second) // some are queued, most not yet
	stop()
	if err := svc.Wait(); err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	start() // on the same port and store
	ctx2, stop2 := context.WithCancel(context.Background())
	defer stop2()
	svc2 := startService(t, ctx2, cfg)
	t.Cleanup(func() { stop2(); _ = svc2.Wait() })

	got := waitQueued(t, js, n, 60*time.Second)
	seen := map[string]bool{}
	for _, s := range got {
		if seen[s.EventID] {
			t.Errorf("%s queued twice", s.EventID)
		}
		seen[s.EventID] = true
	}
	if len(got) != n {
		t.Errorf("%d reviews; want %d", len(got), n)
	}
	s, err := js.Stream(context.Background(), review.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if s.CachedInfo().State.Msgs != n {
		t.Errorf("%s holds %d messages; want %d", review.Stream, s.CachedInfo().State.Msgs, n)
	}
}

// A worker upgraded from the version whose review feeder read every
// verdict through a durable consumer on NOESIS_OUTPUTS deletes that
// consumer at start; it queues a review from the tribunal's pool itself,
// and a verdict, whether it requires review or not, is read back by no
// consumer on NOESIS_OUTPUTS.
func TestWorkerQueuesReviewsWithoutReadingTheOutputs(t *testing.T) {
	ns, _, js := streamsOnly(t, consumers.StreamsConfig{})
	ctx := context.Background()
	if _, err := js.CreateOrUpdateConsumer(ctx, consumers.StreamOutputs, jetstream.ConsumerConfig{Durable: review.FeederConsumer,
		FilterSubject: consumers.StoreSubject(consumers.OutputSubject(pipeline.StageTribunal, "*")), AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	_, simURL := simtest.Start(t, sim.Config{Shape: "tagged-lines"})
	runService(t, testConfig(t, ns, simURL))
	if _, err := js.Consumer(ctx, consumers.StreamOutputs, review.FeederConsumer); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("the old feeder's consumer after the worker started: %v; want it deleted", err)
	}

	for i, text := range []string{"I will tidy the archive", "maybe ship the untested migration on a hunch"} {
		th := thought(i, text)
		th.AgentID, th.Stages = "daimon-1", []pipeline.Stage{pipeline.StageTribunal}
		publishThought(t, js, th)
	}
	queued := waitQueued(t, js, 1, 30*time.Second)
	outputs, err := js.Stream(ctx, consumers.StreamOutputs)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() bool {
		info, err := outputs.Info(ctx)
		return err == nil && info.State.Msgs == 2
	}, func() string { return "the two verdicts were not both published" })
	if len(queued) != 1 || queued[0].EventID != "evt-0001" {
		t.Errorf("queued %s; want evt-0001's review only", fmt.Sprint(queued))
	}
	names := outputs.ConsumerNames(ctx)
	for name := range names.Name() {
		t.Errorf("consumer %q reads %s; want none", name, consumers.StreamOutputs)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
}

// natstestFreePort is a loopback port free now, for a server restarted on it.
func natstestFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
