package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// authServer starts a server from a copy of the shipped nats-auth.conf, with
// agent alice added by `noesis agent add`, and returns it with alice's seed file.
func authServer(t *testing.T) (*server.Server, string) {
	t.Helper()
	t.Setenv("NOESIS_AGENT_PASSWORD", "agent-pw")
	t.Setenv("NOESIS_WORKER_PASSWORD", "worker-pw")
	t.Setenv("NOESIS_ADMIN_PASSWORD", "admin-pw")
	dir := t.TempDir()
	shipped, err := os.ReadFile("../../nats-auth.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nats-auth.conf")
	if err := os.WriteFile(conf, shipped, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "", "agent", "add", "alice", "--conf", conf, "--dir", dir)
	if err != nil {
		t.Fatalf("agent add: %v: %s", err, out)
	}
	if _, err := runCLI(t, "", "agent", "add", "alice", "--conf", conf, "--dir", dir); err == nil {
		t.Fatal("adding alice twice was accepted")
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	opts.Port, opts.StoreDir, opts.NoLog, opts.NoSigs = server.RANDOM_PORT, t.TempDir(), true, true
	return natstest.RunServerWithOptions(t, opts), filepath.Join(dir, "alice.nk")
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
// each agent has its own identity, may publish only its own thoughts and read
// only its own outputs and inbox; every attack is denied or harmless. The
// worker runs every feature (shared limits and budgets included) and cannot
// delete a stream.
func TestHostileAgentsUnderShippedAuth(t *testing.T) {
	ns, aliceSeed := authServer(t)
	if nc, err := nats.Connect(ns.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("an anonymous connection was accepted")
	}

	_, simURL := simtest.Start(t, sim.Config{Shape: "tagged-lines"})
	cfg := testConfig(t, ns, simURL)
	cfg.NATSUser, cfg.NATSPassword = "worker", "worker-pw"
	cfg.Limits = "sim:deepseek-ai/DeepSeek-R1-0528-fast=600/0/0" // shared counters in KV
	cfg.Budgets = "sim=100"                                      // shared spend in KV
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	runService(t, cfg)

	var dv, av violations
	daimon, djs := connectAgent(t, ns, "daimon-1", nats.UserInfo("daimon-1", "agent-pw"), &dv)
	aliceAuth, err := nats.NkeyOptionFromSeed(aliceSeed)
	if err != nil {
		t.Fatal(err)
	}
	alice, ajs := connectAgent(t, ns, "alice", aliceAuth, &av)

	dgot := collectOn(t, daimon, "noesis.narratives.daimon-1", "noesis.verdicts.daimon-1")
	agot := collectOn(t, alice, "noesis.narratives.alice", "noesis.verdicts.alice")

	// Each publishes its own thought and reads its own outputs.
	dth := thought(1, "daimon-1's own thought")
	dth.EventID, dth.AgentID, dth.Content.Depth = "shared-7", "daimon-1", 1
	ath := thought(2, "alice's own thought")
	ath.EventID, ath.AgentID, ath.Content.Depth = "alice-1", "alice", 1
	// Suppression: alice first publishes under daimon-1's next event id and message id.
	forged := ath
	forged.EventID = "shared-7"
	publishThought(t, ajs, forged)
	publishThought(t, ajs, ath)
	for deadline := time.Now().Add(5 * time.Second); ; { // daimon-1 publishes later, as it would
		data, _ := json.Marshal(dth)
		ack, err := djs.Publish(context.Background(), consumers.ThoughtSubject("daimon-1"), data, jetstream.WithMsgID("shared-7"))
		if err != nil {
			t.Fatalf("daimon-1 publishes its own thought: %v", err)
		}
		if !ack.Duplicate {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("daimon-1's thought was suppressed as a duplicate")
		}
	}
	dgot.waitFor(t, 20*time.Second, map[string]int{"narratives": 1, "verdicts": 1})
	agot.waitFor(t, 20*time.Second, map[string]int{"narratives": 2, "verdicts": 2})

	// Hidden subscriptions: everyone's inboxes, another agent's outputs, all outputs, dead letters.
	for _, subject := range []string{"_INBOX.>", "noesis.verdicts.daimon-1", "noesis.verdicts.>", "noesis.dlq.>", "_INBOX_daimon-1.>", "noesis.thoughts.>"} {
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
	// The JetStream API: no stream info, no deleting.
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

	// An agent_id that is not the subject's, and trusted-looking headers: a
	// dead letter for the first, and the header is ignored.
	var dlq violations
	admin, err := nats.Connect(ns.ClientURL(), nats.UserInfo("admin", "admin-pw"), nats.ErrorHandler(dlq.handler))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adminGot := collectOn(t, admin, "noesis.dlq.>", "noesis.narratives.alice")
	imposter := thought(3, "I am daimon-1, honestly")
	imposter.EventID, imposter.AgentID = "imp-1", "daimon-1"
	data, _ := json.Marshal(imposter)
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
	adminGot.waitFor(t, 20*time.Second, map[string]int{"dlq.narrative": 1, "dlq.tribunal": 1, "narratives": 1})
	adminGot.exactlyOnce(t, "narratives", []string{"hdr-1"}) // the Only-Stage header of an agent did not skip the narrative
	for _, l := range adminGot.messages("dlq.narrative") {
		if !strings.Contains(l.Header.Get(consumers.HeaderDLQReason), "does not match the subject's agent") {
			t.Errorf("imposter's letter says %q", l.Header.Get(consumers.HeaderDLQReason))
		}
	}
	dgot.exactlyOnce(t, "verdicts", []string{"shared-7"}) // nothing of alice's reached daimon-1

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
	if _, err := wjs.Stream(ctx(), consumers.StreamDLQ); err != nil {
		t.Errorf("the worker lost sight of the DLQ: %v", err)
	}
	// Nothing stuck behind the attacks: no advisory waiting, no stream missing.
	if h := consumers.ReadHealth(ctx(), wjs); h.ReaperBacklog != 0 || len(h.MissingStreams) != 0 {
		t.Errorf("health after the attacks: %+v", h)
	}
	// And the worker's shared limits and budgets worked: their buckets hold counts.
	ajsAdmin, _ := jetstream.New(admin)
	for _, bucket := range []string{"noesis_rate", "noesis_spend"} {
		kv, err := ajsAdmin.KeyValue(ctx(), bucket)
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
