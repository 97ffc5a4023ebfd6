package pipeline

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// decodeAsEncodingJSON is DecodeThought with encoding/json alone (the oracle
// of FuzzDecodeThoughtAsEncodingJSON).
func decodeAsEncodingJSON(data []byte) (Thought, error) {
	var want Thought
	if err := json.Unmarshal(data, &want); err != nil {
		return want, fmt.Errorf("%w: %s", ErrBadInput, describeJSONError(err))
	}
	want.EventID = strings.TrimSpace(stripInvisible(want.EventID))
	want.AgentID = strings.TrimSpace(stripInvisible(want.AgentID))
	want.Content.UserInput = stripInvisible(want.Content.UserInput)
	want.Content.Source = stripInvisible(want.Content.Source)
	want.Content.SessionID = stripInvisible(want.Content.SessionID)
	want.Action = stripInvisible(want.Action)
	want.Outcome = stripInvisible(want.Outcome)
	want.ReasoningTrace = stripInvisible(want.ReasoningTrace)
	return want, want.Validate()
}

const oracleBase = `"event_id":"e","agent_id":"a","content":{"user_input":"x"}`

// oracleCases are inputs where goccy and encoding/json could read apart:
// trailing bytes, duplicate and case-folded keys, escapes, lone surrogates,
// numbers out of range, wrong types, nulls.
var oracleCases = []string{
	`{` + oracleBase + `}` + "\x00",
	`{` + oracleBase + `}` + "\x00garbage",
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x` + "\x00" + `y"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x` + "\t" + `y"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x` + "\n" + `y"}}`,
	`{` + oracleBase + `,"extra":01}`,
	`{` + oracleBase + `,"extra":1.2.3}`,
	`{` + oracleBase + `,"extra":-}`,
	`{` + oracleBase + `,"extra":1e}`,
	`{` + oracleBase + `,"extra":tru}`,
	`{` + oracleBase + `,"extra":nul}`,
	`{` + oracleBase + `,"extra":[1,2,]}`,
	`{` + oracleBase + `,"extra":{"a":1,}}`,
	`{` + oracleBase + `,"extra":"\x"}`,
	`{` + oracleBase + `,"extra":"` + "\x01" + `"}`,
	`{` + oracleBase + `,"extra":[}`,
	`{` + oracleBase + `,"extra":{"a" 1}}`,
	`{` + oracleBase + `,"extra":{1:2}}`,
	`{` + oracleBase + `,}`,
	`{` + oracleBase + `,"coherence":01}`,
	`{` + oracleBase + `,"coherence":.5}`,
	`{` + oracleBase + `,"coherence":1.}`,
	`{` + oracleBase + `,"coherence":+1}`,
	`{` + oracleBase + `,"coherence":1e400}`,
	`{` + oracleBase + `,"coherence":-0.0}`,
	`{` + oracleBase + `,"coherence":1E+2}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x","depth":01}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x","depth":1e0}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x","depth":-0}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x","depth":2.0}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x","depth":"2"}}`,
	`{"event_id":"e","event_id":null,"agent_id":"a","content":{"user_input":"x"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x"},"content":null}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x"},"content":{"source":"s"}}`,
	`{` + oracleBase + `,"coherence":0.5,"coherence":null}`,
	`{` + oracleBase + `,"stages":["analysis"],"stages":null}`,
	`{` + oracleBase + `,"stages":["analysis"],"stages":[]}`,
	`{` + oracleBase + `,"salience":{"novelty":0.5},"salience":{"urgency":0.5}}`,
	`{` + oracleBase + `,"salience":{"novelty":0.5},"salience":null}`,
	`{` + oracleBase + `,"timestamp":"2026-12-03T10:00:00Z","timestamp":null}`,
	`{` + oracleBase + `,"timestamp":"2026-12-03T10:00:00Z","timestamp":"2026-12-04T10:00:00Z"}`,
	`{"event_id":"e","agent_id":"a","AGENT_ID":"b","content":{"user_input":"x"}}`,
	`{"event_id":"e","AGENT_ID":"b","agent_id":"a","content":{"user_input":"x"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x"},"ſtages":["tribunal"]}`,
	`{"event_id":"e","agent_id":"a","content":{"uſer_input":"x"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x"},"priority":"batch","PRIORITY":"critical"}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x","session_id":"s","SESSION_ID":"t"}}`,
	`{` + oracleBase + `,"stages":["analysis",]}`,
	`{` + oracleBase + `,"stages":"analysis"}`,
	`{` + oracleBase + `,"stages":[1]}`,
	`{` + oracleBase + `,"stages":[null]}`,
	`{` + oracleBase + `,"stages":[null,"tribunal"]}`,
	`{` + oracleBase + `,"action":null}`,
	`{` + oracleBase + `,"action":123}`,
	`{` + oracleBase + `,"action":true}`,
	`{` + oracleBase + `,"action":{}}`,
	`{` + oracleBase + `,"salience":[]}`,
	`{` + oracleBase + `,"salience":{"novelty":"1"}}`,
	`{` + oracleBase + `,"content":"x"}`,
	`{` + oracleBase + `,"timestamp":"2026-12-03T10:00:00+25:00"}`,
	`{` + oracleBase + `,"timestamp":"2026-12-03 10:00:00Z"}`,
	`{` + oracleBase + `,"timestamp":1}`,
	`{"event_id":"e\u0000","agent_id":"a","content":{"user_input":"x"}}`,
	`{"event_id":"\ud800","agent_id":"a","content":{"user_input":"x"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"\ud800\u0041"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"\udc00\ud800"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"\ud83d\ude80"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"\uD83D\uDE80"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"\ud83d\u0041"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"\ud83d"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"\ud83d\"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"\/\b\f"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"\u00"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"\u00zz"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x"}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x"}}}`,
	` {` + oracleBase + `} `,
	"\ufeff{" + oracleBase + `}`,
	"{" + oracleBase + "}\v",
	"{" + oracleBase + "}\f",
	"{" + oracleBase + "}\u00a0",
	`{` + oracleBase + `}null`,
	`{` + oracleBase + `}1`,
	`null`,
	`{}`,
	``,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x","depth":9223372036854775808}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x","depth":-9223372036854775809}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x","depth":3,"depth":null}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x","depth":3.5e0}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x","depth":true}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x"},"coherence":"0.5"}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x"},"coherence":true}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x"},"coherence":[0.5]}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x"},"event_id":{"a":1}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x"},"ext":"` + "\xed\xa0\x80" + `"}`,
	`{"event_id" : "e" , "agent_id":"a","content":{"user_input":"x"}` + "\r\n}",
	`{"\u0065vent_id":"e","agent_id":"a","content":{"user_input":"x"}}`,
	`{"event_id":"e","agent_\u0069d":"a","content":{"user_input":"x"}}`,
	`{"event_\u0000id":"e","agent_id":"a","content":{"user_input":"x"}}`,
	`{"event_id":"e","agent_id":"a","content":{"user_input":"x"},"stages":["tribunal"],"ſtages":null}`,
}

// DecodeThought reads each of oracleCases as encoding/json alone does: the
// same thought, or an error with the same message.
func TestDecodeThoughtAsEncodingJSON(t *testing.T) {
	for _, s := range oracleCases {
		got, gotErr := DecodeThought([]byte(s), 4096)
		want, wantErr := decodeAsEncodingJSON([]byte(s))
		if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Errorf("%q:\n  error %v\n  encoding/json's %v", s, gotErr, wantErr)
			continue
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n  read %+v\n  encoding/json read %+v", s, got, want)
		}
	}
}
