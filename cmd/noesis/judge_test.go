package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/pipeline"
)

// judgeRun is one run of `noesis judge`: what it printed and its exit code.
type judgeRun struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func (r judgeRun) String() string {
	return fmt.Sprintf("exit %d after %s\nstdout:\n%s\nstderr:\n%s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// judgeCLI runs `noesis judge args...` in-process, as main would, with the
// environment the test set (NATS_URL, credentials). Safe to call from
// several goroutines at once.
func judgeCLI(t *testing.T, args ...string) judgeRun {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append(append([]string{"judge"}, args...), "--env-file", "/dev/null"))
	start := time.Now()
	err := cmd.ExecuteContext(context.Background())
	if err != nil && err.Error() != "" {
		fmt.Fprintln(&errOut, "noesis:", err)
	}
	return judgeRun{stdout: out.String(), stderr: errOut.String(), code: exitCode(err), took: time.Since(start)}
}

// judgeWorker is taggedWorker with the CLI pointed at its server.
func judgeWorker(t *testing.T) *rig {
	t.Helper()
	r := taggedWorker(t)
	t.Setenv("NATS_URL", r.ns.ClientURL())
	return r
}

// Every decision has its exit code, and only a pass is 0: the gate in one
// line of shell. Each run is a real thought through the worker and the
// simulator over HTTP.
func TestJudgeExitsWithTheDecision(t *testing.T) {
	judgeWorker(t)
	cases := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"pass", []string{"--text", "I will tidy the archive", "--narrative"}, exitOK, "decision  pass"},
		{"fail", []string{"--action", "rm -rf /backups/2025-*"}, exitFail, "decision  fail"},
		{"review", []string{"--text", "I am unsure whether to tidy the archive"}, exitReview, "decision  review"},
		{"capital", []string{"--text", "I will tidy the archive sim:offense=capital@dike"}, exitCapital, "decision  capital"},
		{"unavailable", []string{"--text", "I will tidy the archive sim:hang@sophia"}, exitUnavailable, "decision  unavailable"},
	}
	runs := make([]judgeRun, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i] = judgeCLI(t, append([]string{"--agent", "daimon-j", "--event-id", "judge-" + c.name}, c.args...)...)
		}()
	}
	wg.Wait()
	for i, c := range cases {
		r := runs[i]
		if r.code != c.code || !strings.Contains(r.stdout, c.says) {
			t.Errorf("%s: want exit %d saying %q; %s", c.name, c.code, c.says, r)
			continue
		}
		// Each judge on a line of its own, and the event it judged.
		for _, j := range []string{"VERITAS", "SOPHIA", "DIKĒ"} {
			if !strings.Contains(r.stdout, "\n  "+j+" ") {
				t.Errorf("%s: no line for %s: %s", c.name, j, r)
			}
		}
		if !strings.Contains(r.stdout, "event_id  judge-"+c.name+" ") {
			t.Errorf("%s: the verdict printed is not this thought's: %s", c.name, r)
		}
	}
	if !strings.Contains(runs[0].stdout, "\nnarrative (") {
		t.Errorf("--narrative printed no narrative: %s", runs[0])
	}
	if !strings.Contains(runs[4].stdout, "SOPHIA   abstained (operational)") {
		t.Errorf("the hung judge is not shown abstaining: %s", runs[4])
	}
}

// --json prints the verdict as it came, one line, then the narrative's.
func TestJudgeJSONIsTheVerdictAsItCame(t *testing.T) {
	got := collectOn(t, judgeWorker(t).nc, "noesis.verdicts.daimon-j", "noesis.narratives.daimon-j")
	r := judgeCLI(t, "--agent", "daimon-j", "--event-id", "json-1", "--action", "rm -rf /backups/2025-*", "--narrative", "--json")
	if r.code != exitFail {
		t.Fatalf("want exit %d: %s", exitFail, r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want two JSON lines (verdict, narrative): %s", r)
	}
	var v pipeline.Verdict
	if err := json.Unmarshal([]byte(lines[0]), &v); err != nil || v.EventID != "json-1" || v.Decision != pipeline.DecisionFail || len(v.Judges) != 3 {
		t.Fatalf("first line is not the fail verdict of json-1 (%v): %s", err, lines[0])
	}
	var n pipeline.Narrative
	if err := json.Unmarshal([]byte(lines[1]), &n); err != nil || n.EventID != "json-1" || n.Stage != pipeline.StageNarrative {
		t.Fatalf("second line is not the narrative of json-1 (%v): %s", err, lines[1])
	}
	got.waitFor(t, 5*time.Second, map[string]int{"verdicts": 1})
	if sent := got.messages("verdicts")[0].Data; !bytes.Equal(sent, []byte(lines[0])) {
		t.Errorf("--json changed the verdict:\nsent    %s\nprinted %s", sent, lines[0])
	}
}

// No worker: the thought is stored and no verdict comes; judge gives up at
// --timeout with its own code, and says the thought is stored.
func TestJudgeTimesOut(t *testing.T) {
	streamsOnly(t, consumers.StreamsConfig{})
	r := judgeCLI(t, "--agent", "daimon-j", "--text", "nobody is listening", "--timeout", "400ms")
	if r.code != exitTimeout || !strings.Contains(r.stderr, "no verdict for thought") || !strings.Contains(r.stderr, "within 400ms (it is stored: NOESIS_THOUGHTS seq 1)") {
		t.Fatalf("want exit %d and why: %s", exitTimeout, r)
	}
	if r.took < 400*time.Millisecond || r.took > 10*time.Second {
		t.Errorf("timed out after %s, want 400 ms and a little", r.took)
	}
	if r.stdout != "" {
		t.Errorf("printed a verdict it did not get: %s", r)
	}
}

// The verdict comes before judge could have subscribed had it subscribed
// after publishing: the hook plays a worker faster than any, publishing the
// verdict through the outputs stream as soon as the thought is stored and
// before judge goes on. A verdict of another thought under the same event_id
// comes first, and is passed over: judge takes its own thought's, by digest.
// And the server held judge's subscription when it routed the thought.
func TestJudgeSubscribesBeforePublishing(t *testing.T) {
	ns, nc, js := streamsOnly(t, consumers.StreamsConfig{})
	subscribedFirst := make(chan bool, 1)
	watch, err := nc.Subscribe(consumers.ThoughtSubject("daimon-j"), func(*nats.Msg) {
		cz, err := ns.Connz(&server.ConnzOptions{Subscriptions: true})
		found := false
		for _, c := range cz.Conns {
			found = found || (err == nil && slices.Contains(c.Subs, "noesis.verdicts.daimon-j"))
		}
		subscribedFirst <- found
	})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var hooked int
	first, checked := false, false
	testHookJudgeStored = func(req judgeRequest) {
		hooked++
		// The watch's check, made while judge still holds its subscription:
		// once judge returns, it has unsubscribed, and a check made late
		// (its callback runs in this process's own time) would see nothing.
		select {
		case first = <-subscribedFirst:
			checked = true
		case <-time.After(5 * time.Second):
		}
		other := req
		other.data = append([]byte(nil), req.data...)
		other.data = append(other.data, ' ') // another thought, the same event_id
		publishVerdict(t, js, other, pipeline.DecisionPass)
		publishVerdict(t, js, req, pipeline.DecisionFail)
	}
	t.Cleanup(func() { testHookJudgeStored = nil })
	r := judgeCLI(t, "--agent", "daimon-j", "--event-id", "fast-1", "--text", "answered at once", "--timeout", "5s")
	if hooked != 1 || r.code != exitFail || !strings.Contains(r.stdout, "decision  fail") {
		t.Fatalf("hook ran %d times; want exit %d on the verdict published before judge went on: %s", hooked, exitFail, r)
	}
	if !checked {
		t.Error("the thought was stored, but the watch on its subject saw nothing within 5s")
	} else if !first {
		t.Error("the server routed the thought before it held judge's subscription to the verdicts")
	}
	if strings.Contains(r.stdout, "\x1b") || !strings.Contains(r.stdout, `hook\x1b[31m`) {
		t.Errorf("the judge's reasoning reached the terminal unescaped: %q", r.stdout)
	}
}

// publishVerdict stores a verdict of decision for req's thought in the
// outputs stream, as a worker does: the stream republishes it on
// noesis.verdicts.<agent> as it stores it, so it has gone out by the time
// this returns.
func publishVerdict(t *testing.T, js jetstream.JetStream, req judgeRequest, d pipeline.Decision) {
	t.Helper()
	v := pipeline.Verdict{Meta: pipeline.Meta{EventID: req.thought.EventID, AgentID: req.thought.AgentID, Stage: pipeline.StageTribunal, CreatedAt: time.Now()},
		Decision: d, Judges: []pipeline.JudgeVote{{Name: "VERITAS", Verdict: pipeline.VotePass, Confidence: 0.9, Reasoning: "hook\x1b[31m"}}}
	m := nats.NewMsg(consumers.StoreSubject(consumers.OutputSubject(pipeline.StageTribunal, req.thought.AgentID)))
	m.Data, _ = json.Marshal(v)
	m.Header.Set(consumers.HeaderEventID, req.thought.EventID)
	m.Header.Set(consumers.HeaderStage, string(pipeline.StageTribunal))
	if _, err := js.PublishMsg(context.Background(), m, jetstream.WithMsgID(req.outputID(pipeline.StageTribunal))); err != nil {
		t.Fatal(err)
	}
}

// reviewFor is a person's decision as the review queue publishes it.
func reviewFor(eventID, agent, decision, verdictDecision string) []byte {
	b, _ := json.Marshal(map[string]string{"event_id": eventID, "agent_id": agent, "decision": decision, "note": "checked\x1b[2J the backups",
		"reviewer": "ops@example.org", "decided_at": time.Now().UTC().Format(time.RFC3339), "verdict_decision": verdictDecision})
	return b
}

// reviewOf is a decision naming its review, as consumers/review stores it.
func reviewOf(reviewID, eventID, agent, decision string) []byte {
	b, _ := json.Marshal(review.Ruling{ReviewID: reviewID, EventID: eventID, AgentID: agent, Decision: decision, Note: "n",
		Reviewer: "r", DecidedAt: time.Now(), VerdictDecision: "review"})
	return b
}

// --wait-review: a verdict that requires a person is followed by the wait for
// their decision, and the exit code is theirs. Decisions on other events, or
// on another decision than this verdict's, are passed over. A verdict that
// requires no one ends the wait at once.
func TestJudgeWaitsForTheReview(t *testing.T) {
	nc := judgeWorker(t).nc
	got := collectOn(t, nc, "noesis.verdicts.daimon-r")
	for _, c := range []struct {
		person string
		code   int
	}{{"fail", exitFail}, {"pass", exitOK}} {
		id := "rev-" + c.person
		done := make(chan judgeRun, 1)
		go func() {
			done <- judgeCLI(t, "--agent", "daimon-r", "--event-id", id, "--text", "I am unsure whether to tidy the archive", "--wait-review", "--timeout", "20s", "--review-timeout", "20s")
		}()
		// The review queue answers once the verdict is out.
		eventually(t, 20*time.Second, func() bool {
			got.mu.Lock()
			defer got.mu.Unlock()
			return got.counts["verdicts"][id] == 1
		}, func() string { return "no verdict for " + id })
		for _, m := range [][]byte{
			reviewFor("another-event", "daimon-r", "pass", "review"),
			reviewFor(id, "daimon-r", "pass", "capital"),         // another thought under this event_id
			reviewOf("0123456789abcdef", id, "daimon-r", "pass"), // another thought's review
			reviewFor(id, "daimon-r", "maybe", "review"),         // not a decision
			reviewFor(id, "daimon-r", c.person, "review"),
		} {
			if err := nc.Publish(review.PublicSubject("daimon-r"), m); err != nil {
				t.Fatal(err)
			}
		}
		r := <-done
		if r.code != c.code || !strings.Contains(r.stdout, "decision  review") || !strings.Contains(r.stdout, "review    "+c.person+" by ops@example.org") {
			t.Errorf("person says %s: want exit %d: %s", c.person, c.code, r)
		}
		if strings.Contains(r.stdout, "\x1b") {
			t.Errorf("an escape sequence reached the terminal: %q", r.stdout)
		}
	}

	// Nobody reviews: the review's own timeout, the timeout's code.
	r := judgeCLI(t, "--agent", "daimon-r", "--text", "I am unsure whether to tidy the archive", "--wait-review", "--review-timeout", "300ms")
	if r.code != exitTimeout || !strings.Contains(r.stderr, "no review for thought") {
		t.Errorf("no reviewer: want exit %d: %s", exitTimeout, r)
	}
	// A pass requires no one: no wait.
	r = judgeCLI(t, "--agent", "daimon-r", "--text", "I will tidy the archive", "--wait-review", "--review-timeout", "1h")
	if r.code != exitOK || r.took > 20*time.Second {
		t.Errorf("a pass with --wait-review: %s", r)
	}
}

// Flags that cannot work are refused before anything is published, with
// the error code, never a decision's.
func TestJudgeRefusesWhatCannotWork(t *testing.T) {
	ns := natstest.RunServer(t)
	t.Setenv("NATS_URL", ns.ClientURL())
	for _, args := range [][]string{
		{"--agent", "daimon-j", "--text", "x", "--stages", "narrative"},
		{"--agent", "daimon-j", "--text", "x", "--stages", "tribunal", "--narrative"},
		{"--text", "no agent"},
		{"--agent", "daimon-j"}, // nothing to judge
		{"--agent", "daimon-j", "--text", "x", "--timeout", "0s"},
		{"--agent", "daimon-j", "--text", "x", "--no-such-flag"},
	} {
		if r := judgeCLI(t, args...); r.code != exitError {
			t.Errorf("%v: want exit %d: %s", args, exitError, r)
		}
	}
}

// As an agent under the shipped nats-auth.conf: judge reads only the
// agent's own subjects, gets its verdicts and its reviewer's decision, and
// asks for no dead letters it may not read (--dlq is off with credentials;
// asked for, the server's refusal is an error, not a wait).
func TestJudgeAsAnAgentUnderShippedAuth(t *testing.T) {
	ns, seeds := agentWorker(t)
	t.Setenv("NATS_NKEY", filepath.Join(seeds, "alice.nk"))
	t.Setenv("NOESIS_AGENT", "alice")

	if r := judgeCLI(t, "--text", "I will tidy the archive"); r.code != exitOK {
		t.Errorf("alice's pass: %s", r)
	}
	if r := judgeCLI(t, "--action", "rm -rf /backups/2025-*", "--narrative"); r.code != exitFail || !strings.Contains(r.stdout, "\nnarrative (") {
		t.Errorf("alice's fail with its narrative: %s", r)
	}
	r := judgeCLI(t, "--text", "I will tidy the archive", "--dlq")
	if r.code != exitError || !strings.Contains(r.stderr, `Subscription to "noesis.dlq.`) || r.took > 10*time.Second {
		t.Errorf("--dlq as an agent: want the refusal, exit %d: %s", exitError, r)
	}
	// A verdict that requires a person: the worker's tribunal pool queues
	// it, a reviewer decides it through the queue's desk, and
	// alice's judge, reading noesis.reviews.alice, exits with the decision.
	stored := make(chan judgeRequest, 1)
	testHookJudgeStored = func(req judgeRequest) { stored <- req }
	t.Cleanup(func() { testHookJudgeStored = nil })
	done := make(chan judgeRun, 1)
	go func() {
		done <- judgeCLI(t, "--text", "I am unsure whether to tidy the archive", "--wait-review", "--timeout", "20s", "--review-timeout", "20s")
	}()
	req := <-stored
	reviewer, err := nats.Connect(ns.ClientURL(), nats.UserInfo("reviewer", "reviewer-pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer reviewer.Close()
	rjs, _ := jetstream.New(reviewer)
	desk := review.NewDesk(rjs)
	var decideErr error
	eventually(t, 20*time.Second, func() bool {
		_, decideErr = desk.Decide(context.Background(), consumers.ThoughtDigest(req.subject, req.data),
			review.Choice{Decision: review.Fail, Note: "the archive is the only copy", Reviewer: "reviewer"})
		return decideErr == nil
	}, func() string { return fmt.Sprintf("the review of alice's verdict could not be decided: %v", decideErr) })
	if r := <-done; r.code != exitFail || !strings.Contains(r.stdout, "decision  review") || !strings.Contains(r.stdout, "review    fail by reviewer") {
		t.Errorf("alice waiting for the review: want exit %d: %s", exitFail, r)
	}

	// Another agent's thought: the server refuses alice's publish.
	if r := judgeCLI(t, "--agent", "bob", "--text", "I am bob"); r.code != exitError {
		t.Errorf("alice judgeResult as bob: %s", r)
	}
}
