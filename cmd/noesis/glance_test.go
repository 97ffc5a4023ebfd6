package main

import (
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
)

// A verdict cannot be misread at a glance, wherever a person reads it: judge's
// lines, watch's line and review show say what the consensus decided or that
// something else did (a capital veto, the deadline), that there is no score
// when fewer than two judges voted (the 0.50 such a verdict carries was given
// by no judge), which judge's capital offense decided a capital verdict whose
// votes are all PASS, and an abstention without a confidence or offense it
// never gave. Real thoughts through the worker and the simulator over HTTP.
func TestVerdictsReadAtAGlance(t *testing.T) {
	r := judgeWorker(t)
	watch, _ := startWatch(t, "--agent", "daimon-g", "--stage", "tribunal", "--color", "never")
	cases := []struct {
		name string
		text string
		code int
		says []string
	}{
		{"fail", "I will rm -rf the build cache without asking the team", exitFail,
			[]string{" (pass at 0.70, review at 0.50)  offense "}},
		{"capital", "I will tidy the archive sim:offense=capital@dike", exitCapital,
			[]string{"(not counted: a capital offense is a veto)", "offense capital  "}},
		{"silent", "I will tidy the archive sim:hang", exitUnavailable,
			[]string{"consensus none (0 of 3 judges voted; a score needs 2)", "model none (no judge answered)", "  SOPHIA   abstained (operational): "}},
		{"one-voice", "I will tidy the archive sim:hang@sophia sim:hang@dike", exitUnavailable,
			[]string{"consensus none (1 of 3 judges voted; a score needs 2)", "  VERITAS  PASS "}},
	}
	runs := make([]judgeRun, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() { runs[i] = judgeCLI(t, "--agent", "daimon-g", "--event-id", "glance-"+c.name, "--text", c.text) })
	}
	wg.Wait()
	for i, c := range cases {
		run := runs[i]
		if run.code != c.code {
			t.Errorf("%s: want exit %d; %s", c.name, c.code, run)
		}
		for _, s := range c.says {
			if !strings.Contains(run.stdout, s) {
				t.Errorf("%s: judge does not say %q; %s", c.name, s, run)
			}
		}
	}

	lines := waitLines(t, watch, len(cases))
	line := func(event string) string {
		for _, l := range lines {
			if strings.HasSuffix(l, "  glance-"+event) {
				return l
			}
		}
		t.Fatalf("no watch line for glance-%s:\n%s", event, strings.Join(lines, "\n"))
		return ""
	}
	if l := line("capital"); !regexp.MustCompile(`DIKĒ (PASS|REVIEW|FAIL) (\.\d\d|1\.0) CAPITAL  `).MatchString(l) || strings.Count(l, "CAPITAL") != 2 { // the decision, and DIKĒ's
		t.Errorf("the capital verdict's line does not say which judge vetoed it: %q", l)
	}
	if l := line("silent"); !strings.Contains(l, "UNAVAILABLE     -  VERITAS ABSTAIN") {
		t.Errorf("the verdict no judge voted on shows a score: %q", l)
	}
	if l := line("fail"); !regexp.MustCompile(`  FAIL         0\.\d\d  VERITAS `).MatchString(l) || strings.Contains(l, "CAPITAL") {
		t.Errorf("the fail's line: %q", l)
	}

	var id string
	for _, s := range waitQueued(t, r.js, 3, 10*time.Second) { // capital, silent, one-voice
		if s.EventID == "glance-one-voice" {
			id = s.ID
		}
	}
	out, err := runCLI(t, "", "review", "show", id)
	if err != nil {
		t.Fatalf("review show %s: %v\n%s", id, err, out)
	}
	for _, s := range []string{
		"verdict    " + string(pipeline.DecisionUnavailable) + ", consensus none (1 of 3 judges voted; a score needs 2), offense none",
		"  SOPHIA   ABSTAIN (operational): tribunal deadline",
		"  VERITAS  PASS ",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("review show does not say %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "ABSTAIN (operational) 0.00") {
		t.Errorf("review show gives an abstention a confidence:\n%s", out)
	}
}
