package answer

import (
	"strings"
	"testing"
)

// A cached answer is read from the memo the second time, with the same
// result; an answer that differs in any input is read afresh.
func TestCachedAnswersReadOnce(t *testing.T) {
	m := NewMemo(2)
	const tag = "NOESIS-T1"
	answer := tag + " VERDICT: FAIL\n" + tag + " CONFIDENCE: 0.8\n" + tag + " OFFENSE: major\n" + tag + " REASONING: it deletes the only copy"
	first, err := m.Read(answer, "", tag, "q")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.entries) != 1 {
		t.Fatalf("%d entries after one read", len(m.entries))
	}
	again, err := m.Read(answer, "", tag, "q")
	if err != nil || again != first || first.Verdict != VoteFail || first.Offense != OffenseMajor {
		t.Fatalf("first %+v, again %+v, %v", first, again, err)
	}
	other := strings.ReplaceAll(answer, "FAIL", "PASS")
	if a, _ := m.Read(other, "", tag, "q"); a.Verdict != VotePass {
		t.Fatalf("another answer read as %+v", a)
	}
	if _, err := m.Read("no verdict here", "", tag, "q"); err == nil {
		t.Fatal("an unreadable answer read")
	}
	if _, err := m.Read("still none", "", tag, "q"); err == nil || len(m.entries) > 2 {
		t.Fatalf("%d entries, want at most 2; %v", len(m.entries), err)
	}
}
