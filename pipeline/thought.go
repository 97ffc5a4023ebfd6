package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
)

// DefaultMaxThoughtBytes is the default limit on an encoded thought.
const DefaultMaxThoughtBytes = 64 << 10

// Content is what the agent thought, as in the origin's event content.
type Content struct {
	UserInput string `json:"user_input"`
	Depth     int    `json:"depth,omitempty"`
	Source    string `json:"source,omitempty"`
	SessionID string `json:"session_id,omitempty"`
}

// Salience weighs a thought, as in the origin's ConsciousnessBridge input.
type Salience struct {
	Novelty    float64 `json:"novelty"`
	Relevance  float64 `json:"relevance"`
	Urgency    float64 `json:"urgency"`
	Confidence float64 `json:"confidence"`
}

// Thought is the input event an agent publishes on noesis.thoughts.<agent_id>.
// EventID, AgentID and Content.UserInput are required; everything else is optional.
type Thought struct {
	EventID        string     `json:"event_id"`
	AgentID        string     `json:"agent_id"`
	Content        Content    `json:"content"`
	Coherence      *float64   `json:"coherence,omitempty"`
	Salience       *Salience  `json:"salience,omitempty"`
	Action         string     `json:"action,omitempty"`
	Outcome        string     `json:"outcome,omitempty"`
	ReasoningTrace string     `json:"reasoning_trace,omitempty"`
	Timestamp      *time.Time `json:"timestamp,omitempty"`
	Stages         []Stage    `json:"stages,omitempty"`
	// Priority routes the model calls: "batch" prefers the batch targets
	// (Modal), "critical" and "normal" (the default) the tier's chain as configured.
	Priority string `json:"priority,omitempty"`
}

// Wants reports whether the thought asks for stage s. With no explicit
// stages a thought gets a narrative and a verdict, plus an analysis when its
// depth is 4 or more.
func (t *Thought) Wants(s Stage) bool {
	if len(t.Stages) == 0 {
		return s == StageNarrative || s == StageTribunal || (s == StageAnalysis && t.Content.Depth >= 4)
	}
	for _, x := range t.Stages {
		if x == s {
			return true
		}
	}
	return false
}

// DecodeThought parses and validates an encoded thought. Payloads over
// maxBytes (0 means DefaultMaxThoughtBytes) are refused before parsing.
// Invisible format characters (zero-width, bidi and tag characters) are
// stripped from every text field. Every error wraps ErrBadInput.
func DecodeThought(data []byte, maxBytes int) (Thought, error) {
	var t Thought
	if maxBytes <= 0 {
		maxBytes = DefaultMaxThoughtBytes
	}
	if len(data) > maxBytes {
		return t, fmt.Errorf("%w: payload is %d bytes, over the %d-byte limit", ErrBadInput, len(data), maxBytes)
	}
	if err := unmarshalThought(data, &t); err != nil {
		return t, fmt.Errorf("%w: %s", ErrBadInput, describeJSONError(err))
	}
	t.EventID = strings.TrimSpace(stripInvisible(t.EventID))
	t.AgentID = strings.TrimSpace(stripInvisible(t.AgentID))
	t.Content.UserInput = stripInvisible(t.Content.UserInput)
	t.Content.Source = stripInvisible(t.Content.Source)
	t.Content.SessionID = stripInvisible(t.Content.SessionID)
	t.Action = stripInvisible(t.Action)
	t.Outcome = stripInvisible(t.Outcome)
	t.ReasoningTrace = stripInvisible(t.ReasoningTrace)
	return t, t.Validate()
}

// Validate checks the thought's required fields and ranges. Its errors wrap ErrBadInput.
func (t *Thought) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadInput, fmt.Sprintf(format, args...))
	}
	switch {
	case t.EventID == "":
		return bad("event_id is required")
	case len(t.EventID) > 256:
		return bad("event_id is longer than 256 characters")
	case t.AgentID == "":
		return bad("agent_id is required")
	case !ValidToken(t.AgentID):
		return bad("agent_id %q must be 1-128 letters, digits, '-' or '_' (it names a subject token)", t.AgentID)
	case strings.TrimSpace(t.Content.UserInput) == "":
		return bad("content.user_input is required")
	case t.Content.Depth < 0 || t.Content.Depth > 5:
		return bad("content.depth is %d, want 1-5", t.Content.Depth)
	case t.Coherence != nil && (*t.Coherence < 0 || *t.Coherence > 1):
		return bad("coherence is %g, want 0-1", *t.Coherence)
	}
	if s := t.Salience; s != nil {
		for name, v := range map[string]float64{"novelty": s.Novelty, "relevance": s.Relevance, "urgency": s.Urgency, "confidence": s.Confidence} {
			if v < 0 || v > 1 {
				return bad("salience.%s is %g, want 0-1", name, v)
			}
		}
	}
	switch t.Priority {
	case "", "normal", "batch", "critical":
	default:
		return bad("priority %q: want normal, batch or critical", t.Priority)
	}
	for _, s := range t.Stages {
		if !s.Valid() {
			return bad("unknown stage %q (want narrative, tribunal or analysis)", s)
		}
	}
	return nil
}

// ValidToken reports whether s can stand as one NATS subject token in the
// noesis subjects: 1-128 ASCII letters, digits, '-' or '_'.
func ValidToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// unmarshalThought reads data into t as encoding/json's Unmarshal does, and
// fails as it does, with its errors (describeJSONError reads them). It reads
// with github.com/goccy/go-json first: every thought is read once by each
// stage's pool, and encoding/json (its validating pass, then its decoding)
// was 5 % of a worker's processor on cache hits. Whatever goccy refuses is
// read again by encoding/json, whose reading or error stands, and so is
// invalid UTF-8, which encoding/json replaces with U+FFFD. The two readings
// could then differ only where goccy accepts what encoding/json would not,
// or reads it otherwise: FuzzDecodeThoughtAsEncodingJSON looks for that
// (case-folded keys, escapes, lone surrogates, duplicates, numbers out of
// range, trailing data) and has found none.
func unmarshalThought(data []byte, t *Thought) error {
	if utf8.Valid(data) && gojson.Unmarshal(data, t) == nil {
		return nil
	}
	*t = Thought{}
	// Unmarshal, not a Decoder: no reader, no buffer copied from it (a
	// Decoder and its buffer were 4 % of the bytes a worker allocated on
	// cache hits), and it refuses trailing data itself.
	return json.Unmarshal(data, t)
}

func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return fmt.Sprintf("a thought is a JSON object, not a JSON %s", typeErr.Value)
	case errors.As(err, &typeErr):
		return fmt.Sprintf("field %q has the wrong type: got JSON %s, want %s", typeErr.Field, typeErr.Value, typeErr.Type)
	case errors.As(err, &syntaxErr) && strings.HasSuffix(syntaxErr.Error(), "after top-level value"):
		return "trailing data after the JSON object"
	case errors.As(err, &syntaxErr) && syntaxErr.Error() == "unexpected end of JSON input":
		return "invalid JSON: the input ends before the object does"
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syntaxErr.Offset, err)
	default:
		return "invalid JSON: " + err.Error()
	}
}

// stripInvisible removes format characters (Unicode category Cf: zero-width
// spaces and joiners, bidi overrides, tag characters) that can hide text from
// a reader while a model still sees it. It returns s unchanged when there are none.
func stripInvisible(s string) string {
	ascii := true // ASCII has no format characters: most thoughts need no rune lookups
	for i := 0; i < len(s) && ascii; i++ {
		ascii = s[i] < utf8.RuneSelf
	}
	if ascii {
		return s
	}
	clean := true
	for _, r := range s {
		if unicode.Is(unicode.Cf, r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
}
