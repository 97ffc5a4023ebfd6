package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
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

// FuzzQuoteThought: the hand-written quotation is, byte for byte, what
// encoding/json's Encoder writes (quoteThoughtByEncoder), for any strings
// (invalid UTF-8, control characters, U+2028, HTML) and any finite numbers.
func FuzzQuoteThought(f *testing.F) {
	f.Add("daimon-7", "delete <old> backups & \"free\" space\n\t\\", 3, "", "rm -rf /", "", "trace\u2028\u2029\x00\x1f\x7f", 0.62, true, 1e-7, 2.5e21, math.Copysign(0, -1), 1.0)
	f.Add("a", "\xff\xfe broken \xc3", 0, "src", "", "out", "", 0.0, false, 0.0, 0.0, 0.0, 0.0)
	f.Add("b", "x", -4, "\b\f\r", "é 漢字 🚀", "", "", 1e-6, true, 1e20, 1e21, 123456789.125, -1e-9)
	f.Fuzz(func(t *testing.T, agent, task string, depth int, source, action, outcome, trace string, coherence float64, salient bool, n, r, u, c float64) {
		for _, x := range []float64{coherence, n, r, u, c} {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return // not a thought's number: JSON has none
			}
		}
		th := Thought{AgentID: agent, Content: Content{UserInput: task, Depth: depth, Source: source},
			Action: action, Outcome: outcome, ReasoningTrace: trace}
		if coherence != 0 {
			th.Coherence = &coherence
		}
		if salient {
			th.Salience = &Salience{Novelty: n, Relevance: r, Urgency: u, Confidence: c}
		}
		if got, want := quoteThought(&th), quoteThoughtByEncoder(&th); got != want {
			t.Fatalf("quotation differs from encoding/json's:\ngot  %q\nwant %q", got, want)
		}
	})
}

// quoteThoughtByEncoder is quoteThought as it was written before, by
// encoding/json's Encoder: the oracle of the hand-written one.
func quoteThoughtByEncoder(t *Thought) string {
	view := struct {
		AgentID        string    `json:"agent_id"`
		Task           string    `json:"task"`
		Depth          int       `json:"depth,omitempty"`
		Source         string    `json:"source,omitempty"`
		Action         string    `json:"action,omitempty"`
		Outcome        string    `json:"outcome,omitempty"`
		ReasoningTrace string    `json:"reasoning_trace,omitempty"`
		Coherence      *float64  `json:"coherence,omitempty"`
		Salience       *Salience `json:"salience,omitempty"`
	}{t.AgentID, t.Content.UserInput, t.Content.Depth, t.Content.Source, t.Action, t.Outcome, t.ReasoningTrace, t.Coherence, t.Salience}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(view)
	return dataBegin + "\n" + string(bytes.TrimSpace(buf.Bytes())) + "\n" + dataEnd
}

// FuzzDecodeThoughtAsEncodingJSON: DecodeThought (goccy first) reads any
// bytes as encoding/json alone would: the same thought, or an error with
// the same message.
func FuzzDecodeThoughtAsEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"event_id":"e1","agent_id":"a","content":{"user_input":"hi","depth":3},"coherence":0.5,"stages":["analysis"]}`,
		`{"event_id":"e","agent_id":"a","content":{"user_input":"ação \u00e7 \ud800 \"q\""},"salience":{"novelty":1e-7,"urgency":1}}`,
		`{"EVENT_ID":"e","Agent_Id":"a","content":{"user_input":"x"},"ſtages":["tribunal"],"priority":"batch"}`,
		`{"event_id":"e","agent_id":"a","content":{"user_input":"x"},"timestamp":"2026-12-03T10:00:00Z","action":null}`,
		`{"event_id":"e","agent_id":"a","content":{"user_input":"x","depth":1.5}}`,
		`{"event_id":"e","agent_id":"a","content":{"user_input":"x"}} {}`,
		`{"event_id":"e","event_id":"f","agent_id":"a","content":{"user_input":"x"},"content":{"source":"s"}}`,
		"{\"event_id\":\"e\",\"agent_id\":\"a\",\"content\":{\"user_input\":\"\xff\xfe\"}}",
		`{"event_id":"e","agent_id":"a","content":{"user_input":"x","depth":1e0},"coherence":-0}`,
		`{"event_id":"e","agent_id":"a","content":{"user_input":"x","depth":99999999999999999999}}`,
		`{"event_id":"e","agent_id":"a","content":{"user_input":"x"},"coherence":1e400}`,
		`{"event_id":"e","agent_id":"a","content":{"user_input":"\u0000\udc00\ud83d\ude80"},"\u017ftages":["narrative"]}`,
		`{"event_id":"e","agent_id":"a","content":{"user_input":"x"},"reaſoning_trace":"t","ſalience":{"novelty":0.5}}`,
		`{"event_id":"e","agent_id":"a","content":{"user_input":"x"},"stages":"tribunal"}`,
		`{"event_id":"e","agent_id":"a","content":{"user_input":"x"},"timestamp":"not a time"}`,
		`{"event_id":"e","agent_id":"a","content":null,"salience":null,"stages":null}`,
		`{"event_id":"e","agent_id":"a","content":{"user_input":"x","extra":{"deep":[1,{"a":"b"}]}}}`,
		`  {"event_id":"e","agent_id":"a","content":{"user_input":"x"}}  `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		got, gotErr := DecodeThought(data, 4096)
		want, wantErr := decodeAsEncodingJSON(data)
		if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Fatalf("error %v, encoding/json's %v", gotErr, wantErr)
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("read\n%+v\nencoding/json read\n%+v", got, want)
		}
	})
}
