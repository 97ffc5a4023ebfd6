package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/docs/contract"
	"github.com/noesis-dev/noesis/router/sim"
)

// A thought the worker cannot read (larger than its NOESIS_MAX_THOUGHT_BYTES,
// though not the CLI's) is dead-lettered and judge stops at once with its
// code: from the letter itself where the dead letters can be read (no
// credentials: --dlq by default), from the agent's notice of it without.
// A notice of another thought under the same event_id does not stop it.
func TestJudgeStopsOnItsDeadLetter(t *testing.T) {
	r := newRig(t, sim.Config{})
	r.cfg.MaxThoughtBytes = 1024
	runService(t, r.cfg)
	t.Setenv("NATS_URL", r.ns.ClientURL())
	for _, dlq := range []string{"--dlq=true", "--dlq=false"} {
		res := judgeCLI(t, "--agent", "daimon-j", "--text", strings.Repeat("a long account ", 200), "--timeout", "60s", dlq)
		if res.code != exitDeadLetter || !strings.Contains(res.stderr, "was dead-lettered (stage input)") || !strings.Contains(res.stderr, "over the 1024-byte limit") {
			t.Fatalf("%s: want exit %d with the stage and the reason: %s", dlq, exitDeadLetter, res)
		}
		if res.took > 30*time.Second {
			t.Errorf("%s: took %s: waited for the timeout, not for the letter", dlq, res.took)
		}
	}

	// Notices that name the event but not this thought, or this thought's
	// digest under another event, are passed over: the verdict decides.
	testHookJudgeStored = func(req judgeRequest) {
		digest := consumers.ThoughtDigest(req.subject, req.data)
		for _, n := range []consumers.Notice{
			{EventID: req.thought.EventID, AgentID: "daimon-j", Stage: "tribunal", Reason: "another thought's", ThoughtDigest: "0123456789abcdef"},
			{EventID: "another-event", AgentID: "daimon-j", Stage: "tribunal", Reason: "another event's", ThoughtDigest: digest},
		} {
			b, _ := json.Marshal(n)
			if err := r.nc.Publish(consumers.NoticeSubject("daimon-j"), b); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(func() { testHookJudgeStored = nil })
	res := judgeCLI(t, "--agent", "daimon-j", "--event-id", "same-event", "--text", "I will tidy the archive", "--timeout", "60s", "--dlq=false")
	if res.code == exitDeadLetter || res.code == exitTimeout || res.code == exitError || !strings.Contains(res.stdout, "decision  ") {
		t.Fatalf("another thought's notices: want the verdict's code: %s", res)
	}
}

// withUnfencedUser rewrites conf (written by authServer) to give agent id's
// account a second user with no permissions: what that account receives is
// then bounded by its imports alone.
func withUnfencedUser(t *testing.T, conf, id string) {
	t.Helper()
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	block := "# agent " + id + "\n  " + id + " {\n" + fmt.Sprintf("    limits: { max_connections: %d, max_subscriptions: %d }\n", agentMaxConnections, agentMaxSubscriptions) + "    users: [\n"
	if !strings.Contains(string(b), block) {
		t.Fatalf("no account block for %s in %s", id, conf)
	}
	text := strings.Replace(string(b), block, block+"      { user: "+id+"-unfenced, password: unfenced-pw }\n", 1)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Dead-letter notices under the shipped nats-auth.conf: alice's thought that
// noesis dead-letters reaches alice as a notice (valid against its schema),
// and `noesis judge` as alice exits 7 with the reason; bob hears nothing of
// hers, nor does alice's whole account (a user of it with no permissions)
// hear anything of bob's: the export binds the subject's agent token to the
// importing account and each account imports its own. Alice may not
// subscribe to bob's notices.
func TestHostileNoticesUnderShippedAuth(t *testing.T) {
	ns0, seeds, conf := authServer(t)
	ns0.Shutdown()
	withUnfencedUser(t, conf, "alice")
	ns := serveConf(t, conf)
	cfg := workerConfig(t, ns, sim.Config{Shape: "tagged-lines"})
	cfg.MaxThoughtBytes = 1024 // the CLI's is larger: its long thoughts are dead-lettered at input
	runService(t, cfg)

	var av, bv violations
	alice, _ := connectAgent(t, ns, "alice", agentAuth(t, seeds, "alice"), &av)
	bob, bjs := connectAgent(t, ns, "bob", agentAuth(t, seeds, "bob"), &bv)
	unfenced, err := nats.Connect(ns.ClientURL(), nats.UserInfo("alice-unfenced", "unfenced-pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer unfenced.Close()
	syncSub := func(nc *nats.Conn, subject string) *nats.Subscription {
		t.Helper()
		s, err := nc.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	account := syncSub(unfenced, "noesis.deadletters.>") // every notice alice's account receives
	bobs := syncSub(bob, consumers.NoticeSubject("bob"))
	if _, err := alice.Subscribe(consumers.NoticeSubject("bob"), func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	av.waitFor(t, `Subscription to "`+consumers.NoticeSubject("bob")+`"`)

	// Alice's long thought, judged: dead-lettered at input, exit 7.
	t.Setenv("NATS_URL", ns.ClientURL())
	t.Setenv("NATS_NKEY", filepath.Join(seeds, "alice.nk"))
	t.Setenv("NOESIS_AGENT", "alice")
	r := judgeCLI(t, "--event-id", "alice-long-1", "--text", strings.Repeat("a long account ", 200), "--timeout", "60s")
	if r.code != exitDeadLetter || !strings.Contains(r.stderr, "thought alice-long-1 was dead-lettered (stage input)") ||
		!strings.Contains(r.stderr, "over the 1024-byte limit") || r.took > 30*time.Second {
		t.Fatalf("alice's dead-lettered thought: want exit %d at once, with the reason: %s", exitDeadLetter, r)
	}
	schemas, err := contract.Schemas()
	if err != nil {
		t.Fatal(err)
	}
	// nextNotice is the next notice alice's account receives; one on
	// another subject than hers (bob's) is a failure.
	nextNotice := func() consumers.Notice {
		t.Helper()
		m, err := account.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("alice's account heard no notice: %v", err)
		}
		if m.Subject != consumers.NoticeSubject("alice") {
			t.Fatalf("alice's account heard %s: %s", m.Subject, m.Data)
		}
		if err := contract.Validate(schemas, contract.DeadLetterNotice, m.Data); err != nil {
			t.Error(err)
		}
		var n consumers.Notice
		if err := json.Unmarshal(m.Data, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := nextNotice(); n.EventID != "alice-long-1" || n.AgentID != "alice" || n.Stage != "input" || !strings.Contains(n.Reason, "over the 1024-byte limit") {
		t.Errorf("alice's notice %+v", n)
	}

	// Bob's own dead letter reaches bob, and not alice's account: it
	// hears its next notice, published after bob's, with nothing between.
	long := thought(1, strings.Repeat("bob's long account ", 100))
	long.EventID, long.AgentID = "bob-long-1", "bob"
	publishThought(t, bjs, long)
	m, err := bobs.NextMsg(10 * time.Second)
	if err != nil || !strings.Contains(string(m.Data), `"event_id":"bob-long-1"`) {
		t.Fatalf("bob's notice: %v, %v", m, err)
	}
	r = judgeCLI(t, "--event-id", "alice-long-2", "--text", strings.Repeat("another long account ", 200), "--timeout", "60s")
	if r.code != exitDeadLetter {
		t.Fatalf("alice's second dead-lettered thought: %s", r)
	}
	if n := nextNotice(); n.EventID != "alice-long-2" {
		t.Errorf("alice's account heard %+v, want her second notice", n)
	}
	if m, err := bobs.NextMsg(100 * time.Millisecond); err == nil {
		t.Errorf("bob heard %s", m.Data)
	}
}

// The notices' export binds the subject's agent token to the importing
// account: an account that imports another agent's notices is refused by the
// server, whatever its users may subscribe to.
func TestHostileNoticeImportOfAnotherAgent(t *testing.T) {
	_, _, conf := authServer(t)
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	own := `{ stream: { account: NOESIS, subject: "noesis.deadletters.alice" } }`
	if !strings.Contains(string(b), own) {
		t.Fatalf("alice's account does not import her notices:\n%s", b)
	}
	for _, subject := range []string{"noesis.deadletters.bob", "noesis.deadletters.*", "noesis.deadletters.>"} {
		text := strings.Replace(string(b), own, own+"\n    { stream: { account: NOESIS, subject: \""+subject+"\" } }", 1)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := server.ProcessConfigFile(conf); err == nil || !strings.Contains(err.Error(), "not authorized") {
			t.Errorf("alice's account importing %s: %v; want the server to refuse it", subject, err)
		}
	}
}
