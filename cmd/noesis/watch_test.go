package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// startWatch runs `noesis watch args...` until it stops or the test ends,
// and returns its output once it says it is watching (subscribed and
// flushed). done is closed with the command's error when it returns.
func startWatch(t *testing.T, args ...string) (out *syncBuffer, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newRootCmd()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	cmd.SetArgs(append([]string{"watch", "--env-file", "/dev/null"}, args...))
	ch, finished := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(finished)
		ch <- cmd.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
	})
	eventually(t, 10*time.Second, func() bool { return strings.Contains(errOut.String(), "watching ") || len(ch) > 0 },
		func() string { return "watch did not start: " + errOut.String() })
	return out, ch
}

// waitLines waits until out holds n lines.
func waitLines(t *testing.T, out *syncBuffer, n int) []string {
	t.Helper()
	eventually(t, 30*time.Second, func() bool { return strings.Count(out.String(), "\n") >= n },
		func() string { return "watch printed:\n" + out.String() })
	return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
}

// watch prints one line per output of the real pipeline: a verdict's
// decision, consensus and votes, a narrative's first words; the filters
// leave out what they should, --json passes the messages through, colour is
// on only when asked, and what an agent wrote cannot reach the terminal raw.
func TestWatchShowsEachOutputOnALine(t *testing.T) {
	r := newRig(t, sim.Config{Shape: "tagged-lines"})
	runService(t, r.cfg)
	t.Setenv("NATS_URL", r.ns.ClientURL())

	plain, _ := startWatch(t, "--agent", "daimon-1", "--color", "never")
	coloured, _ := startWatch(t, "--agent", "daimon-1", "--stage", "tribunal", "--color", "always")
	failed, failedDone := startWatch(t, "--decision", "fail", "--json", "--count", "1")

	pass := thought(1, "I will compact the archive and report the space freed")
	pass.EventID, pass.Content.Depth = "watch-pass-\x1b[2J", 1 // an agent's event id that would clear the screen
	fail := thought(5, "I will rm -rf the build cache without asking the team")
	fail.EventID, fail.Content.Depth = "watch-fail", 1
	other := thought(2, "daimon-2's thought, not daimon-1's")
	other.Content.Depth = 1
	for _, th := range []pipeline.Thought{pass, fail, other} {
		publishThought(t, r.js, th)
	}

	lines := waitLines(t, plain, 4) // daimon-1's two narratives and two verdicts
	verdict := regexp.MustCompile(`^\d\d:\d\d:\d\d  daimon-1    verdict    (PASS|FAIL)\s+\d\.\d\d  VERITAS (PASS|FAIL) \.\d\d  SOPHIA (PASS|FAIL) \.\d\d  DIKĒ (PASS|FAIL) \.\d\d  \d+(ms|\.\ds)  watch-`)
	narrative := regexp.MustCompile(`^\d\d:\d\d:\d\d  daimon-1    narrative  \S.*  \d+(ms|\.\ds)  watch-`)
	var verdicts, narratives int
	for _, l := range lines {
		switch {
		case verdict.MatchString(l):
			verdicts++
		case narrative.MatchString(l):
			narratives++
		default:
			t.Errorf("line %q is neither a verdict's nor a narrative's", l)
		}
		if strings.ContainsAny(l, "\x1b") || strings.Contains(l, "daimon-2") {
			t.Errorf("line %q: raw escape, or another agent's output", l)
		}
	}
	if verdicts != 2 || narratives != 2 || !strings.Contains(plain.String(), `watch-pass-\x1b[2J`) {
		t.Errorf("%d verdicts and %d narratives (want 2 and 2), event id escaped: %v\n%s", verdicts, narratives,
			strings.Contains(plain.String(), `watch-pass-\x1b[2J`), plain.String())
	}
	if !strings.Contains(plain.String(), "verdict    FAIL") || !strings.Contains(plain.String(), "verdict    PASS") {
		t.Errorf("the pass and the fail are not both there:\n%s", plain.String())
	}

	for _, l := range waitLines(t, coloured, 2) {
		if !strings.Contains(l, "verdict    \x1b[") || strings.Contains(l, "narrative") {
			t.Errorf("coloured verdict line %q", l)
		}
	}

	select {
	case err := <-failedDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("watch --decision fail --count 1 printed no verdict: %q", failed.String())
	}
	var v pipeline.Verdict
	if err := json.Unmarshal([]byte(strings.TrimSpace(failed.String())), &v); err != nil || v.Decision != pipeline.DecisionFail || v.EventID != "watch-fail" {
		t.Errorf("--decision fail --json printed %q (%v)", failed.String(), err)
	}
}

// Under the shipped access control an agent watches its own outputs with
// --agent, reads its own transcripts, and is told what to do when it tries
// to watch everyone's.
func TestWatchAsAnAgentUnderShippedAuth(t *testing.T) {
	ns, seeds := agentWorker(t)
	t.Setenv("NATS_NKEY", seeds+"/alice.nk")

	_, refused := startWatch(t)
	select {
	case err := <-refused:
		if err == nil || !strings.Contains(err.Error(), "--agent") {
			t.Errorf("alice watching everyone's outputs: %v, want a refusal that names --agent", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("alice watching everyone's outputs was not refused")
	}

	out, _ := startWatch(t, "--agent", "alice", "--stage", "tribunal", "--count", "1")
	var av violations
	alice, ajs := connectAgent(t, ns, "alice", agentAuth(t, seeds, "alice"), &av)
	transcripts := make(chan *nats.Msg, 1)
	if _, err := alice.ChanSubscribe(consumers.TranscriptSubject("alice"), transcripts); err != nil {
		t.Fatal(err)
	}
	if err := alice.Flush(); err != nil {
		t.Fatal(err)
	}
	th := thought(0, "I will rotate the signing keys on the usual schedule")
	th.EventID, th.AgentID, th.Content.Depth = "alice-watch-1", "alice", 1
	publishThought(t, ajs, th)
	lines := waitLines(t, out, 1)
	if !regexp.MustCompile(`^\d\d:\d\d:\d\d  alice       verdict    PASS\s+\d\.\d\d  VERITAS PASS .*alice-watch-1$`).MatchString(lines[0]) {
		t.Errorf("alice's verdict line %q", lines[0])
	}
	select {
	case m := <-transcripts:
		var tr pipeline.Transcript
		if err := json.Unmarshal(m.Data, &tr); err != nil || tr.EventID != "alice-watch-1" || len(tr.Judges) != 3 {
			t.Errorf("alice's transcript %s (%v)", m.Data, err)
		}
	case <-time.After(10 * time.Second):
		t.Error("alice got no transcript of her verdict")
	}
}
