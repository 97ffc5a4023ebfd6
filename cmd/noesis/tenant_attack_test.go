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
	"github.com/rs/zerolog"

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
		if !strings.Contains(l.Reason, "NOESIS_AGENT_MAX_REVIEWS") || !keepsJudges(raw) {
			t.Errorf("letter %q: reason %q, transcript %.200s; want the bound's reason and the judges' transcript", l.Subject, l.Reason, raw)
		}
	}
}

// keepsJudges reports whether a letter's transcript holds the judges'
// words: whole, with their votes, or cut at the letter's bound (16 KiB,
// letter.go), its first bytes a transcript's with the judges in them.
func keepsJudges(raw json.RawMessage) bool {
	var tr pipeline.Transcript
	if json.Unmarshal(raw, &tr) == nil && len(tr.Judges) > 0 {
		return true
	}
	var cut struct {
		Truncated bool   `json:"truncated"`
		Head      string `json:"head"`
	}
	return json.Unmarshal(raw, &cut) == nil && cut.Truncated && strings.HasPrefix(cut.Head, `{"event_id":"alice-`) &&
		strings.Contains(cut.Head, `"judges":[{"name":"VERITAS"`)
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

// An agent past its own quota of requests cannot stop the others: its
// thoughts wait for the next window without holding the pool's slots. Alice
// may make one request a window; her three thoughts take one request and
// then wait, and bob's thought, published while they wait, gets its
// narrative at once. Under the shipped nats-auth.conf, with the simulator,
// two slots for the fast tier. Without the fix her waiting thoughts held
// both slots until her window ended, and bob waited with them. Those two
// slots fix the consumer's unacknowledged thoughts at 8, which the worker
// warns of at start (config.QuotaHoldRisks).
func TestAgentPastItsQuotaDoesNotHoldTheSlots(t *testing.T) {
	logs := quotaFlood(t, 3, 0)
	if !strings.Contains(logs.String(), "the narrative consumer hands out at most 8 unacknowledged thoughts") {
		t.Errorf("no warning that alice's held thoughts could fill the narrative consumer; the log:\n%s", logs.String())
	}
}

// With the consumer's unacknowledged thoughts above one agent's quota of
// thoughts, as the start's warning asks, alice's twelve thoughts held for
// her next window leave bob room: with the 8 that two slots give by
// default, bob's narrative waited for her window (30 s).
func TestAckPendingAboveAnAgentsThoughtsLeavesRoomPastItsHeldFlood(t *testing.T) {
	logs := quotaFlood(t, 12, 4096)
	if strings.Contains(logs.String(), "unacknowledged thoughts") {
		t.Errorf("warned with MAX_ACK_PENDING above the quota of thoughts; the log:\n%s", logs.String())
	}
}

// quotaFlood runs a worker under the shipped nats-auth.conf whose fast tier
// has two slots (and maxAckPending, when not 0) and where alice may make one
// request a window; it publishes n thoughts of alice's, waits until one has
// its narrative and the others are held, and then checks that bob's
// thought gets its narrative within 5 s and that alice had no more. It
// returns the worker's log.
func quotaFlood(t *testing.T, n, maxAckPending int) *natstest.Buffer {
	t.Helper()
	const window = 30 * time.Second
	ns, seeds, _ := authServer(t)
	cfg := workerConfig(t, ns, sim.Config{Shape: "tagged-lines"})
	cfg.LimitWindow = window
	cfg.AgentQuotas = "alice=1/0/0"
	cfg.Tier.Of(pipeline.TierFast).Concurrency = 2
	cfg.Tier.Of(pipeline.TierFast).MaxAckPending = maxAckPending
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var logs natstest.Buffer
	runServiceLogging(t, cfg, &logs, zerolog.DebugLevel)
	narratives := map[string]*collector{}
	js := map[string]jetstream.JetStream{}
	for _, id := range []string{"alice", "bob"} {
		nc, s := connectAgent(t, ns, id, agentAuth(t, seeds, id), &violations{})
		narratives[id], js[id] = collectOn(t, nc, consumers.OutputSubject(pipeline.StageNarrative, id)), s
	}
	publish := func(agent, event string) {
		t.Helper()
		data, _ := json.Marshal(pipeline.Thought{EventID: event, AgentID: agent, Stages: []pipeline.Stage{pipeline.StageNarrative},
			Content: pipeline.Content{UserInput: event + ": I will compact the archive", Depth: 1}})
		if _, err := js[agent].Publish(context.Background(), consumers.ThoughtSubject(agent), data); err != nil {
			t.Fatal(err)
		}
	}
	// The windows are the clock's (NOESIS_LIMIT_WINDOW from the epoch): all
	// of it in one, or a new window lets alice's second thought through.
	natstest.Eventually(t, window, func() bool { return time.Until(time.Now().Truncate(window).Add(window)) > window*2/3 },
		func() string { return "no window began" })
	for i := range n {
		publish("alice", fmt.Sprintf("alice-%d", i))
	}
	held := func() int { return strings.Count(logs.String(), "rate limited; holding the thought") }
	natstest.Eventually(t, 10*time.Second, func() bool { return narratives["alice"].distinct("narratives") == 1 && held() >= min(n-1, 7) },
		func() string {
			return fmt.Sprintf("alice has %d narratives, %d holds; want 1 and her others held", narratives["alice"].distinct("narratives"), held())
		})
	publish("bob", "bob-0")
	natstest.Eventually(t, 5*time.Second, func() bool { return narratives["bob"].distinct("narratives") == 1 },
		func() string { return "bob's narrative waited behind alice's thoughts past her quota" })
	if n := narratives["alice"].distinct("narratives"); n != 1 {
		t.Errorf("alice has %d narratives within her window; her quota allows 1", n)
	}
	return &logs
}
