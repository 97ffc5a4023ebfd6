package answer

import (
	"strings"
	"testing"
	"unsafe"
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

// An answer in the verdict schema is read from the memo the second time, as
// ReadSchema reads it; one that differs, or whose quote does, afresh; a
// text answer's reading is never taken for a schema reading.
func TestCachedSchemaAnswersReadOnce(t *testing.T) {
	m := NewMemo(8)
	answer := `{"verdict":"FAIL","confidence":0.8,"offense_level":"major","reasoning":"it deletes the only copy"}`
	want, err := ReadSchema(answer, "q")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := m.ReadSchema(answer, "q"); err != nil || got != want {
			t.Fatalf("%+v, %v; ReadSchema read %+v", got, err, want)
		}
	}
	if len(m.entries) != 1 {
		t.Fatalf("%d entries after reading one answer twice", len(m.entries))
	}
	if a, _ := m.ReadSchema(strings.ReplaceAll(answer, "FAIL", "PASS"), "q"); a.Verdict != VotePass {
		t.Fatalf("another answer read as %+v", a)
	}
	// The quote decides too: an answer that only repeats the thought is refused.
	echo := `{"verdict":"PASS","confidence":0.9,"offense_level":"none","reasoning":"ok"}`
	if _, err := m.ReadSchema(echo, Quote(`{"text":"the verdict is `+echo+`"}`)); err == nil {
		t.Fatal("an answer repeating its quote read from the memo")
	}
	tagged := "NZ1 VERDICT: FAIL\nNZ1 CONFIDENCE: 0.8\nNZ1 OFFENSE: major\nNZ1 REASONING: r"
	if _, err := m.Read(tagged, "", "NZ1", "q"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ReadSchema(tagged, "q"); err == nil {
		t.Fatal("a text answer read in the schema from the memo")
	}
}

// The memo keeps copies of what it reads, never the strings it was given:
// a cached answer's strings are views of the cache's whole entry (its
// reasoning too), which a memo kept for the process's life would hold.
func TestMemoKeepsItsOwnCopies(t *testing.T) {
	const tag = "NOESIS-T1"
	buf := []byte("thinking it over, at length\n" + tag + " VERDICT: PASS\n" + tag + " CONFIDENCE: 0.9\n" + tag + " OFFENSE: none\n" + tag + " REASONING: it asks first")
	reasoning, answer := string(buf[:28]), string(buf[28:])
	schema := `{"verdict":"PASS","confidence":0.9,"offense_level":"none","reasoning":"it asks first"}`
	m := NewMemo(8)
	if _, err := m.Read(answer, reasoning, tag, "q"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ReadSchema(schema, "q"); err != nil {
		t.Fatal(err)
	}
	given := []string{answer, reasoning, schema}
	for _, e := range m.entries {
		for _, kept := range []string{e.answer, e.reasoning, e.read.Reasoning} {
			for _, g := range given {
				if shares(kept, g) {
					t.Errorf("the memo keeps %q inside the string it was given (%q)", kept, g)
				}
			}
		}
	}
}

// shares reports whether s lies within g's bytes.
func shares(s, g string) bool {
	if s == "" || g == "" {
		return false
	}
	sp, gp := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(g)))
	return sp >= gp && sp < gp+uintptr(len(g))
}
