package pipeline

import (
	"errors"
	"testing"
	"unicode"
)

// FuzzDecodeThought: any bytes give a valid thought or an ErrBadInput, never a
// panic, and a decoded thought keeps no invisible characters.
func FuzzDecodeThought(f *testing.F) {
	for _, s := range []string{
		`{"event_id":"e1","agent_id":"a","content":{"user_input":"hi","depth":3},"coherence":0.5,"stages":["analysis"]}`,
		`{"event_id":"e","agent_id":"a.b","content":{"user_input":"x"}}`,
		`{"event_id":"e","agent_id":"a","content":{"user_input":"pa\u200bss \udb40\udc41"}}`,
		`{"event_id":`, `[]`, `null`, `{"salience":{"urgency":2}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		th, err := DecodeThought(data, 4096)
		if err != nil {
			if !errors.Is(err, ErrBadInput) {
				t.Fatalf("error %v does not wrap ErrBadInput", err)
			}
			return
		}
		if th.EventID == "" || !ValidToken(th.AgentID) || th.Content.UserInput == "" {
			t.Fatalf("invalid thought accepted: %+v", th)
		}
		for _, r := range th.Content.UserInput + th.Action + th.Outcome + th.ReasoningTrace {
			if unicode.Is(unicode.Cf, r) {
				t.Fatalf("invisible character %U kept", r)
			}
		}
	})
}
