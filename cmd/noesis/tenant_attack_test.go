package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// A verdict held back by its agent's bound of reviews is dead-lettered
// unpublished, and its transcript follows it: the agent gets no transcript
// of it (which would tell it what the judges made of a verdict it is not to
// have), and the letter keeps it for the operator. Alice, bound to one
// review, sends three capital thoughts: one verdict and its transcript
// reach her, two dead-letter notices and nothing else. Under the shipped
// nats-auth.conf, with the simulator's judges. Without the fix the pool
// stored every verdict's transcript before its review was asked for, and
// alice read three transcripts for one verdict.
func TestDeadLetteredVerdictHasNoTranscript(t *testing.T) {
	const flood = 3
	ns, seeds, _ := authServer(t)
	cfg := workerConfig(t, ns, sim.Config{Shape: "tagged-lines"})
	cfg.AgentMaxReviews = 1
	runService(t, cfg)
	alice := newTenant(t, ns, seeds, "alice")
	anc, _ := connectAgent(t, ns, "alice", agentAuth(t, seeds, "alice"), &violations{})
	transcripts := collectOn(t, anc, consumers.TranscriptSubject("alice"))
	admin, err := nats.Connect(ns.ClientURL(), nats.UserInfo("admin", "admin-pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	ajs, _ := jetstream.New(admin)
	ctx := context.Background()

	for i := range flood {
		alice.publish(t, fmt.Sprintf("alice-capital-%d", i), "alice", "I will tidy the archive sim:offense=capital@dike "+fmt.Sprint(i))
	}
	natstest.Eventually(t, 20*time.Second, func() bool { return alice.count(noticeRoot) == flood-1 && alice.count(verdictRoot) == 1 },
		func() string {
			return fmt.Sprintf("alice told of %d dead letters and given %d verdicts; want %d and 1", alice.count(noticeRoot), alice.count(verdictRoot), flood-1)
		})
	published := alice.got.messages(verdictRoot)[0].Header.Get(consumers.HeaderEventID)

	// A transcript is stored before its thought's letter and notice: what
	// the stream holds now is every transcript of alice's there will be.
	stored := consumers.StoreSubject(consumers.TranscriptSubject("alice"))
	s, err := ajs.Stream(ctx, consumers.StreamTranscripts)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(stored))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[stored]; n != 1 {
		t.Errorf("NOESIS_TRANSCRIPTS holds %d transcripts of alice's for her one published verdict", n)
	}
	transcripts.waitFor(t, 10*time.Second, map[string]int{"transcripts": 1})
	transcripts.exactlyOnce(t, "transcripts", []string{published})

	// The two letters keep what the judges said.
	letters, err := consumers.ListLetters(ctx, ajs, pipeline.StageTribunal)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != flood-1 {
		t.Fatalf("%d tribunal letters, want %d", len(letters), flood-1)
	}
	for _, l := range letters {
		raw, _ := l.Transcript.(json.RawMessage)
		var tr pipeline.Transcript
		if err := json.Unmarshal(raw, &tr); err != nil || len(tr.Judges) == 0 || !strings.Contains(l.Reason, "NOESIS_AGENT_MAX_REVIEWS") {
			t.Errorf("letter %q: reason %q, transcript %.200s (%v); want the bound's reason and the judges' transcript", l.Subject, l.Reason, raw, err)
		}
	}
}

// One agent cannot take every connection the server allows, nor subscribe
// without end: its account's limits (max_connections, max_subscriptions on
// each connection) bound it. The server here allows eight connections more
// than one agent's bound, standing for whatever a real server can hold:
// alice opens as many as she can, and bob and the worker still get in. Her
// subscriptions past the bound on one connection are refused, so the server
// does not copy each of her outputs to every one. Under the shipped
// nats-auth.conf, the agents added by `noesis agent add`. Without the
// limits alice took all of the server's connections and bob was refused.
func TestAgentCannotTakeEveryConnection(t *testing.T) {
	const room = agentMaxConnections + 8
	conf, seeds := authConf(t)
	ns := serveConf(t, conf, func(o *server.Options) { o.MaxConn = room })
	subErrs := make(chan error, 16)
	connect := func(auth nats.Option) (*nats.Conn, error) {
		nc, err := nats.Connect(ns.ClientURL(), auth, nats.NoReconnect(),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				select {
				case subErrs <- err:
				default:
				}
			}))
		if err == nil {
			t.Cleanup(nc.Close)
		}
		return nc, err
	}
	var alice []*nats.Conn
	var refused error
	for len(alice) < room {
		nc, err := connect(agentAuth(t, seeds, "alice"))
		if err != nil {
			refused = err
			break
		}
		alice = append(alice, nc)
	}
	if len(alice) != agentMaxConnections {
		t.Errorf("alice opened %d connections of the server's %d (last refusal: %v); want her bound, %d", len(alice), room, refused, agentMaxConnections)
	}
	for _, login := range []nats.Option{agentAuth(t, seeds, "bob"), nats.UserInfo("worker", "worker-pw")} {
		if _, err := connect(login); err != nil {
			t.Fatalf("shut out after alice's connections: %v", err)
		}
	}

	nc := alice[0]
	for i := range agentMaxSubscriptions + 1 {
		if _, err := nc.Subscribe(consumers.OutputSubject(pipeline.StageTribunal, "alice"), func(*nats.Msg) {}); err != nil {
			t.Fatalf("subscription %d: %v", i, err)
		}
	}
	_ = nc.Flush()
	select {
	case err := <-subErrs:
		if !strings.Contains(err.Error(), "maximum subscriptions exceeded") {
			t.Errorf("alice's subscription past her bound: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("alice's %d subscriptions on one connection were all taken; want %d", agentMaxSubscriptions+1, agentMaxSubscriptions)
	}
}
