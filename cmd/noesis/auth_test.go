package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// authServer starts a server from a copy of the shipped nats-auth.conf, with
// agents alice and bob added by `noesis agent add`, and returns it with the
// directory of their seed files (alice.nk, bob.nk) and the config's path.
func authServer(t *testing.T) (*server.Server, string, string) {
	t.Helper()
	conf, dir := authConf(t)
	return serveConf(t, conf), dir, conf
}

// authConf is authServer's config and seeds without the server: a copy of
// the shipped nats-auth.conf with alice and bob added, and the directory of
// their seeds.
func authConf(t *testing.T) (string, string) {
	t.Helper()
	t.Setenv("NOESIS_AGENT_PASSWORD", "agent-pw")
	t.Setenv("NOESIS_WORKER_PASSWORD", "worker-pw")
	t.Setenv("NOESIS_ADMIN_PASSWORD", "admin-pw")
	t.Setenv("NOESIS_REVIEWER_PASSWORD", "reviewer-pw")
	dir := t.TempDir()
	shipped, err := os.ReadFile("../../nats-auth.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nats-auth.conf")
	if err := os.WriteFile(conf, shipped, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"alice", "bob"} {
		out, err := runCLI(t, "", "agent", "add", id, "--conf", conf, "--dir", dir)
		if err != nil {
			t.Fatalf("agent add: %v: %s", err, out)
		}
	}
	if _, err := runCLI(t, "", "agent", "add", "alice", "--conf", conf, "--dir", dir); err == nil {
		t.Fatal("adding alice twice was accepted")
	}
	return conf, dir
}

// agentWorker starts a server under the shipped nats-auth.conf (authServer)
// and a worker logged in as its worker user, whose simulated judges answer
// at once in tagged lines, and points the CLI at the server. It returns the
// server and the folder of the agents' seeds.
func agentWorker(t *testing.T) (*server.Server, string) {
	t.Helper()
	ns, seeds, _ := authServer(t)
	runService(t, workerConfig(t, ns, sim.Config{Shape: "tagged-lines"}))
	t.Setenv("NATS_URL", ns.ClientURL())
	return ns, seeds
}

// agentAuth is the login of an agent added by authServer.
func agentAuth(t *testing.T, seeds, id string) nats.Option {
	t.Helper()
	o, err := nats.NkeyOptionFromSeed(filepath.Join(seeds, id+".nk"))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// violations collects a connection's asynchronous permission errors.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err.Error())
}

// waitFor waits until a violation saying what ("Publish to \"x\"",
// "Subscription to \"x\"") has been reported.
func (v *violations) waitFor(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		v.mu.Lock()
		for _, e := range v.errs {
			if strings.Contains(e, "Permissions Violation") && strings.Contains(e, what) {
				v.mu.Unlock()
				return
			}
		}
		v.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("no permissions violation for %q; errors seen: %v", what, v.errs)
}

func connectAgent(t *testing.T, ns *server.Server, id string, auth nats.Option, v *violations) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL(), auth, nats.CustomInboxPrefix(AgentInboxPrefix(id)), nats.ErrorHandler(v.handler))
	if err != nil {
		t.Fatalf("connect as %s: %v", id, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// The shipped access control against hostile agents, as real NATS clients:
// each agent has an account of its own, may publish only its own thoughts and
// read only its own outputs; every attack is denied or harmless. The worker
// runs every feature (shared limits and budgets included) and cannot delete a
// stream.
func TestHostileAgentsUnderShippedAuth(t *testing.T) {
	ns, seeds, _ := authServer(t)
	if nc, err := nats.Connect(ns.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("an anonymous connection was accepted")
	}

	// A provider that refuses a prompt past its context, as vLLM does.
	cfg := workerConfig(t, ns, sim.Config{Shape: "tagged-lines", ContextLength: 12_000})
	cfg.Limits = "sim:deepseek-ai/DeepSeek-R1-0528-fast=600/0/0" // shared counters in KV
	cfg.Budgets = "sim=100"                                      // shared spend in KV
	cfg.AgentMaxThoughts = 30                                    // thoughts one agent may hold
	cfg.MaxThoughtBytes = 256 << 10
	cfg.BreakerCooldown, cfg.TargetBreakerCooldown = time.Minute, 30*time.Second // the shipped order
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	runService(t, cfg)

	var dv, av, bv violations
	daimon, djs := connectAgent(t, ns, "daimon-1", nats.UserInfo("daimon-1", "agent-pw"), &dv)
	alice, ajs := connectAgent(t, ns, "alice", agentAuth(t, seeds, "alice"), &av)
	bob, bjs := connectAgent(t, ns, "bob", agentAuth(t, seeds, "bob"), &bv)

	var dlq violations
	admin, err := nats.Connect(ns.ClientURL(), nats.UserInfo("admin", "admin-pw"), nats.ErrorHandler(dlq.handler))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adminJS, _ := jetstream.New(admin)

	dgot := collectOn(t, daimon, "noesis.narratives.daimon-1", "noesis.verdicts.daimon-1")
	agot := collectOn(t, alice, "noesis.narratives.alice", "noesis.verdicts.alice")
	bgot := collectOn(t, bob, "noesis.narratives.bob", "noesis.verdicts.bob", "noesis.analyses.bob")
	// What alice's account sees on every inbox of its own: nothing of anyone else's.
	var spied atomic.Int64
	if _, err := alice.Subscribe("_INBOX.>", func(m *nats.Msg) { spied.Add(1) }); err != nil {
		t.Fatal(err)
	}

	// Each publishes its own thought and reads its own outputs.
	dth := thought(1, "daimon-1's own thought")
	dth.EventID, dth.AgentID, dth.Content.Depth = "shared-7", "daimon-1", 1
	bth := thought(5, "bob's own thought")
	bth.EventID, bth.AgentID, bth.Content.Depth = "bob-1", "bob", 1
	// Message-id squatting: alice republishes under daimon-1's message id
	// every 2 ms while daimon-1 publishes; its one publish is stored.
	squat, stopSquat := context.WithCancel(context.Background())
	squatting := make(chan struct{})
	var squats atomic.Int64
	go func() {
		defer close(squatting)
		data, _ := json.Marshal(pipeline.Thought{EventID: "squat", AgentID: "alice", Content: pipeline.Content{UserInput: "squatting", Depth: 1}})
		tick := time.NewTicker(2 * time.Millisecond) // the squatter's pace
		defer tick.Stop()
		for squat.Err() == nil {
			if _, err := ajs.Publish(squat, consumers.ThoughtSubject("alice"), data, jetstream.WithMsgID("shared-7")); err == nil {
				squats.Add(1)
			}
			select {
			case <-squat.Done():
			case <-tick.C:
			}
		}
	}()
	// The squatter's id is in before daimon-1's.
	eventually(t, 5*time.Second, func() bool { return squats.Load() > 0 }, func() string { return "the squatter published nothing" })
	data, _ := json.Marshal(dth)
	ack, err := djs.Publish(context.Background(), consumers.ThoughtSubject("daimon-1"), data, jetstream.WithMsgID("shared-7"))
	stopSquat()
	<-squatting
	if err != nil || ack.Duplicate {
		t.Fatalf("daimon-1's publish under a squatted message id: %+v, %v", ack, err)
	}
	publishThought(t, bjs, bth)
	dgot.waitFor(t, 20*time.Second, map[string]int{"narratives": 1, "verdicts": 1})
	bgot.waitFor(t, 20*time.Second, map[string]int{"narratives": 1, "verdicts": 1})

	// Reply-subject injection: alice publishes her own thoughts with reply
	// subjects of her choosing. In one shared account JetStream's
	// acknowledgement landed there with the account's rights: on bob's
	// subscriber, in the outputs stream as bob's verdict, in the thoughts
	// stream as bob's thought, in the worker registry, the spend counter and
	// the answer cache. In alice's own account it reaches nothing of theirs.
	injected := []string{
		"noesis.verdicts.bob",
		consumers.StoreSubject("noesis.verdicts.bob"),
		consumers.ThoughtSubject("bob"),
		"$KV.noesis_workers.phantom-worker",
		"$KV.noesis_spend." + "usd.sim." + time.Now().UTC().Format("2006-01"),
		"$KV.noesis_cache_fast.answer.injected",
	}
	var aliceEvents []string
	for i, reply := range injected {
		th := thought(10+i, "alice's thought with a chosen reply subject")
		th.EventID, th.AgentID, th.Content.Depth = fmt.Sprintf("alice-inj-%d", i), "alice", 1
		data, _ := json.Marshal(th)
		if err := alice.PublishRequest(consumers.ThoughtSubject("alice"), reply, data); err != nil {
			t.Fatal(err)
		}
		aliceEvents = append(aliceEvents, th.EventID)
	}
	// Her outputs come: every acknowledgement was sent before.
	agot.waitFor(t, 20*time.Second, map[string]int{"narratives": len(injected), "verdicts": len(injected)})
	subjects := func(stream, filter string) map[string]uint64 {
		t.Helper()
		st, err := adminJS.Stream(context.Background(), stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(filter))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Subjects
	}
	if got := subjects(consumers.StreamOutputs, consumers.StoreSubject("noesis.verdicts.bob"))[consumers.StoreSubject("noesis.verdicts.bob")]; got != 1 {
		t.Errorf("the outputs stream holds %d verdicts for bob, want his one", got)
	}
	if got := subjects(consumers.StreamThoughts, consumers.ThoughtSubject("bob"))[consumers.ThoughtSubject("bob")]; got != 1 {
		t.Errorf("the thoughts stream holds %d thoughts of bob's, want his one", got)
	}
	for bucket, key := range map[string]string{"noesis_workers": "phantom-worker", "noesis_cache_fast": "answer.injected"} {
		kv, err := adminJS.KeyValue(context.Background(), bucket)
		if err != nil {
			t.Fatalf("bucket %s: %v", bucket, err)
		}
		if e, err := kv.Get(context.Background(), key); err == nil {
			t.Errorf("bucket %s holds %s = %q, written by an agent's reply subject", bucket, key, e.Value())
		}
	}
	spend, err := adminJS.KeyValue(context.Background(), "noesis_spend")
	if err != nil {
		t.Fatal(err)
	}
	spendKeys, _ := spend.Keys(context.Background())
	for _, k := range spendKeys {
		e, err := spend.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := strconv.ParseFloat(string(e.Value()), 64); err != nil {
			t.Errorf("spend counter %s holds %q, written by an agent's reply subject", k, e.Value())
		}
	}

	// Hidden subscriptions: another agent's outputs, transcripts, review decisions and dead-letter notices, all outputs, dead
	// letters, every thought, another agent's inbox prefix, everything.
	for _, subject := range []string{"noesis.verdicts.daimon-1", "noesis.transcripts.daimon-1", "noesis.reviews.daimon-1", "noesis.deadletters.daimon-1", "noesis.deadletters.>", "noesis.verdicts.>", "noesis.dlq.>", "_INBOX_daimon-1.>", "noesis.thoughts.>", ">"} {
		if _, err := alice.Subscribe(subject, func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
		av.waitFor(t, `Subscription to "`+subject+`"`)
	}
	// Forgery: publishing as another agent, publishing outputs, the internal and replay subjects.
	for _, subject := range []string{"noesis.thoughts.daimon-1", "noesis.verdicts.daimon-1", "_noesis.store.verdicts.daimon-1", "_noesis.replay.alice"} {
		_ = alice.Publish(subject, []byte(`{"event_id":"x","agent_id":"daimon-1","content":{"user_input":"x"},"decision":"pass"}`))
		// The kind of violation is named: a subscribe violation on the same
		// subject above must not pass for a refused publish.
		av.waitFor(t, `Publish to "`+subject+`"`)
	}
	// The JetStream API: not there in an agent's account.
	ctx := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		t.Cleanup(cancel)
		return c
	}
	if _, err := ajs.Stream(ctx(), consumers.StreamDLQ); err == nil {
		t.Error("alice read the dead-letter stream's info")
	}
	if err := ajs.DeleteStream(ctx(), consumers.StreamThoughts); err == nil {
		t.Error("alice deleted the thoughts stream")
	}
	// Server-side headers that would rewrite the stream: refused.
	rollup := nats.NewMsg(consumers.ThoughtSubject("alice"))
	rollup.Data, _ = json.Marshal(pipeline.Thought{EventID: "roll-1", AgentID: "alice", Content: pipeline.Content{UserInput: "x"}})
	rollup.Header.Set("Nats-Rollup", "all")
	if _, err := ajs.PublishMsg(ctx(), rollup); err == nil {
		t.Error("a thought with Nats-Rollup: all was accepted")
	}
	if got := subjects(consumers.StreamThoughts, consumers.ThoughtSubject("bob"))[consumers.ThoughtSubject("bob")]; got != 1 {
		t.Errorf("after the roll-up attempt the thoughts stream holds %d thoughts of bob's, want 1", got)
	}

	// An agent_id that is not the subject's, and trusted-looking headers: a
	// dead letter for the first, and the header is ignored.
	adminGot := collectOn(t, admin, "noesis.dlq.>", "noesis.narratives.alice")
	imposter := thought(3, "I am daimon-1, honestly")
	imposter.EventID, imposter.AgentID = "imp-1", "daimon-1"
	data, _ = json.Marshal(imposter)
	if _, err := ajs.Publish(context.Background(), consumers.ThoughtSubject("alice"), data); err != nil {
		t.Fatal(err)
	}
	onlyTribunal := thought(4, "headers that claim to be a replay")
	onlyTribunal.EventID, onlyTribunal.AgentID, onlyTribunal.Content.Depth = "hdr-1", "alice", 1
	m := nats.NewMsg(consumers.ThoughtSubject("alice"))
	m.Data, _ = json.Marshal(onlyTribunal)
	m.Header.Set(consumers.HeaderOnlyStage, "tribunal")
	m.Header.Set(consumers.HeaderDLQTranscript, `{"forged":true}`)
	if _, err := ajs.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() bool {
		return len(adminGot.messages("dlq.narrative"))+len(adminGot.messages("dlq.tribunal"))+len(adminGot.messages("dlq.input")) > 0 &&
			adminGot.distinct("narratives") >= 1
	}, func() string { return "no dead letter for the imposter, or no narrative for hdr-1" })
	adminGot.exactlyOnce(t, "narratives", []string{"hdr-1"}) // the Only-Stage header of an agent did not skip the narrative
	for _, root := range []string{"dlq.narrative", "dlq.tribunal", "dlq.input"} {
		for _, l := range adminGot.messages(root) {
			if !strings.Contains(l.Header.Get(consumers.HeaderDLQReason), "does not match the subject's agent") {
				t.Errorf("imposter's letter says %q", l.Header.Get(consumers.HeaderDLQReason))
			}
		}
	}
	bgot.settle(t, adminJS)
	bgot.exactlyOnce(t, "verdicts", []string{"bob-1"}) // nor bob
	bgot.exactlyOnce(t, "narratives", []string{"bob-1"})
	agot.exactlyOnce(t, "verdicts", append(aliceEvents, "hdr-1", "squat")) // the squatter's copies: one thought, one verdict
	if n := spied.Load(); n != 0 {
		t.Errorf("alice's _INBOX.> saw %d messages that were not hers", n)
	}

	// Thoughts the provider refuses (past its context): dead-lettered with its
	// words, and no breaker opens for daimon-1.
	for i := 0; i < 4; i++ {
		th := pipeline.Thought{EventID: fmt.Sprintf("long-%d", i), AgentID: "alice", Stages: []pipeline.Stage{pipeline.StageTribunal},
			Content: pipeline.Content{UserInput: fmt.Sprintf("%d ", i) + strings.Repeat("an overlong account ", 3000), Depth: 1}}
		publishThought(t, ajs, th)
	}
	eventually(t, 20*time.Second, func() bool { return len(adminGot.messages("dlq.tribunal")) >= 4 },
		func() string {
			return fmt.Sprintf("%d tribunal letters for the over-long thoughts", len(adminGot.messages("dlq.tribunal")))
		})
	after := thought(6, "daimon-1 after the refusals")
	after.EventID, after.AgentID, after.Content.Depth = "after-400", "daimon-1", 1
	publishThought(t, djs, after)
	dgot.waitFor(t, 10*time.Second, map[string]int{"verdicts": 2})
	for _, m := range dgot.messages("verdicts") {
		if strings.Contains(string(m.Data), "circuit open") {
			t.Errorf("daimon-1's verdict met an open breaker: %s", m.Data)
		}
	}
	// Alice fills her quota of thoughts held: refused at publish with the
	// reason; daimon-1's publish still taken.
	var refused error
	for i := 0; i < 200 && refused == nil; i++ { // faster than the compactor, which runs every 5 s
		th := thought(100+i, "filling the stream")
		th.EventID, th.AgentID, th.Stages = fmt.Sprintf("fill-%d", i), "alice", []pipeline.Stage{pipeline.StageNarrative}
		data, _ := json.Marshal(th)
		_, refused = ajs.Publish(ctx(), consumers.ThoughtSubject("alice"), data)
	}
	if refused = consumers.PublishError(consumers.StreamThoughts, refused); !errors.Is(refused, consumers.ErrStreamFull) ||
		!strings.Contains(refused.Error(), "this agent holds its quota of thoughts") {
		t.Errorf("alice past her quota of thoughts: %v", refused)
	}
	last := thought(7, "daimon-1 while alice is full")
	last.EventID, last.AgentID, last.Content.Depth = "after-full", "daimon-1", 1
	publishThought(t, djs, last)
	dgot.waitFor(t, 10*time.Second, map[string]int{"verdicts": 3})
	dgot.exactlyOnce(t, "verdicts", []string{"shared-7", "after-400", "after-full"}) // nothing of alice's reached daimon-1

	// The worker may not delete streams.
	worker, err := nats.Connect(ns.ClientURL(), nats.UserInfo("worker", "worker-pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	wjs, _ := jetstream.New(worker)
	for _, name := range []string{consumers.StreamDLQ, consumers.StreamThoughts} {
		if err := wjs.DeleteStream(ctx(), name); err == nil {
			t.Errorf("the worker deleted %s", name)
		}
	}
	// Nor purge any but the thoughts stream (where the compactor removes what
	// every stage acknowledged).
	for _, name := range []string{consumers.StreamDLQ, consumers.StreamOutputs, "KV_noesis_spend"} {
		if st, err := wjs.Stream(ctx(), name); err != nil {
			t.Errorf("stream %s: %v", name, err)
		} else if err := st.Purge(ctx()); err == nil {
			t.Errorf("the worker purged %s", name)
		}
	}
	if _, err := wjs.Stream(ctx(), consumers.StreamDLQ); err != nil {
		t.Errorf("the worker lost sight of the DLQ: %v", err)
	}
	// Nothing stuck behind the attacks: no advisory waiting, no stream missing.
	if h := consumers.ReadHealth(ctx(), wjs); h.ReaperBacklog != 0 || len(h.MissingStreams) != 0 {
		t.Errorf("health after the attacks: %+v", h)
	}
	// And the worker's shared limits and budgets worked: their buckets hold counts.
	for _, bucket := range []string{"noesis_rate", "noesis_spend"} {
		kv, err := adminJS.KeyValue(ctx(), bucket)
		if err != nil {
			t.Errorf("bucket %s: %v", bucket, err)
			continue
		}
		keys, err := kv.Keys(ctx())
		if err != nil || len(keys) == 0 {
			t.Errorf("bucket %s holds no keys (%v): the worker could not write it", bucket, err)
		}
	}
}

// Under the shipped access control the worker user may list and watch the
// worker registry: a worker alone sees it, and leaves the shared cache
// alone (TestAloneWorkerLeavesTheSharedCacheEmpty).
func TestAloneUnderShippedAuth(t *testing.T) {
	ns, _, _ := authServer(t)
	svc := runService(t, workerConfig(t, ns, sim.Config{}))
	natstest.Eventually(t, 10*time.Second, svc.Cache().Alone, func() string { return "the worker never saw itself alone under nats-auth.conf" })
}
