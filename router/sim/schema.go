package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// What the simulator does with a request's response_format (Config.ResponseFormat).
const (
	// FormatHonour (the default) honours response_format as vLLM with a
	// reasoning parser does: the thinking runs free and arrives in
	// reasoning_content, and the content is one JSON object conforming to
	// the json_schema (json_object: the judge's four fields), written from
	// the simulator's own decision, with no prose around it. A schema that
	// is not a JSON object is answered 400, as vLLM answers a bad schema.
	FormatHonour = "honour"
	// FormatRefuse answers a request that carries a response_format 400, as
	// a provider that does not support it does (param response_format).
	FormatRefuse = "refuse"
	// FormatIgnore ignores response_format and answers text, as a provider
	// that drops the fields it does not know.
	FormatIgnore = "ignore"
)

// responseFormat is the request's response_format, as the OpenAI API sends it.
type responseFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Name   string          `json:"name"`
		Schema json.RawMessage `json:"schema"`
		Strict bool            `json:"strict"`
	} `json:"json_schema"`
}

// asked reports whether the request asks for JSON (json_schema or json_object).
func (f *responseFormat) asked() bool {
	return f != nil && (f.Type == "json_schema" || f.Type == "json_object")
}

// schemaNode is the part of a JSON Schema the simulator writes answers by.
type schemaNode struct {
	Type      any             `json:"type"` // a name, or a list of names
	Enum      []any           `json:"enum"`
	Minimum   *float64        `json:"minimum"`
	Maximum   *float64        `json:"maximum"`
	MaxLength *int            `json:"maxLength"`
	Items     *schemaNode     `json:"items"`
	Props     json.RawMessage `json:"properties"`
}

// judgeFields is what a json_object answer of a judge holds: no schema says
// more, and the prompt names these.
var judgeFields = json.RawMessage(`{"type":"object","properties":{"verdict":{"type":"string"},"confidence":{"type":"number"},` +
	`"offense_level":{"type":"string"},"reasoning":{"type":"string"}}}`)

// formatRefusal is why the server refuses req's response_format, if it does:
// always with FormatRefuse; with FormatHonour, a json_schema whose schema is
// not a JSON object.
func (s *Server) formatRefusal(req chatRequest) *refusal {
	f := req.ResponseFormat
	if !f.asked() {
		return nil
	}
	vllm := s.cfg.ErrorStyle == ErrorsVLLM
	switch s.cfg.ResponseFormat {
	case FormatIgnore:
		return nil
	case FormatRefuse:
		if vllm {
			return &refusal{fault: "response_format", typ: "BadRequestError", message: "Structured outputs (guided decoding) are not supported by this server."}
		}
		return &refusal{fault: "response_format", typ: "invalid_request_error", param: "response_format", code: "unsupported_parameter",
			message: fmt.Sprintf("response_format of type %s is not supported with this model.", f.Type)}
	}
	if f.Type == "json_schema" && (f.JSONSchema == nil || !isObject(f.JSONSchema.Schema)) {
		r := &refusal{fault: "response_format", typ: "invalid_request_error", param: "response_format", code: "invalid_json_schema",
			message: "Invalid schema for response_format: response_format.json_schema.schema must be a JSON object."}
		if vllm {
			r.typ, r.param, r.code = "BadRequestError", "", ""
		}
		return r
	}
	return nil
}

func isObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && m != nil
}

// honoured returns the schema req's answer must conform to, when the server
// honours its response_format.
func (s *Server) honoured(req chatRequest) (json.RawMessage, bool) {
	f := req.ResponseFormat
	if !f.asked() || (s.cfg.ResponseFormat != "" && s.cfg.ResponseFormat != FormatHonour) {
		return nil, false
	}
	if f.Type == "json_object" || f.JSONSchema == nil {
		return judgeFields, true
	}
	return f.JSONSchema.Schema, true
}

// writeSchema writes the object a model held to schema gives: each property
// in the schema's order, its value from what the simulator decided (a
// judge's intent, or another caller's text), within the schema's enums,
// bounds and lengths, as constrained decoding would keep it.
func writeSchema(schema json.RawMessage, in Intent, text string) string {
	var node schemaNode
	if json.Unmarshal(schema, &node) != nil {
		return "{}"
	}
	return string(node.value("", in, text))
}

// value is the JSON a property named name takes.
func (n *schemaNode) value(name string, in Intent, text string) []byte {
	if len(n.Enum) > 0 {
		return enumValue(n.Enum, meant(name, in))
	}
	switch n.typeName() {
	case "object":
		return n.object(in, text)
	case "array":
		if n.Items == nil {
			return []byte("[]")
		}
		return append(append([]byte("["), n.Items.value(name, in, text)...), ']')
	case "number", "integer":
		return n.number(name, in)
	case "boolean":
		return []byte("false")
	case "null":
		return []byte("null")
	}
	s := meant(name, in)
	if s == "" {
		s = text
	}
	if n.MaxLength != nil && len([]rune(s)) > *n.MaxLength {
		s = string([]rune(s)[:*n.MaxLength])
	}
	b, _ := json.Marshal(s)
	return b
}

// object writes the properties in the order the schema lists them.
func (n *schemaNode) object(in Intent, text string) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	dec := json.NewDecoder(bytes.NewReader(n.Props))
	if tok, err := dec.Token(); err == nil && tok == json.Delim('{') {
		for i := 0; dec.More(); i++ {
			tok, err := dec.Token()
			name, _ := tok.(string)
			var child schemaNode
			if err != nil || dec.Decode(&child) != nil {
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			key, _ := json.Marshal(name)
			b.Write(key)
			b.WriteString(": ")
			b.Write(child.value(name, in, text))
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

func (n *schemaNode) typeName() string {
	switch t := n.Type.(type) {
	case string:
		return t
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok && s != "null" {
				return s
			}
		}
	}
	if len(n.Props) > 0 {
		return "object"
	}
	return "string"
}

// number is the judge's confidence for a property that names it, within the
// schema's bounds; the lower bound (or 0) for any other number.
func (n *schemaNode) number(name string, in Intent) []byte {
	v := 0.0
	if kind(name) == "confidence" {
		v = in.Confidence
	}
	if n.Minimum != nil {
		v = math.Max(v, *n.Minimum)
	}
	if n.Maximum != nil {
		v = math.Min(v, *n.Maximum)
	}
	if n.typeName() == "integer" {
		return []byte(strconv.Itoa(int(math.Round(v))))
	}
	return []byte(strconv.FormatFloat(v, 'f', -1, 64))
}

// meant is what a judge means by a property named name: its verdict,
// offense or reasons; "" for a property it has nothing to say in.
func meant(name string, in Intent) string {
	switch kind(name) {
	case "verdict":
		if in.Verdict == "" {
			return "ABSTAIN" // constrained decoding still picks one of the enum
		}
		return in.Verdict
	case "offense":
		return in.Offense
	case "reasoning":
		return reasonFor(in)
	}
	return ""
}

// kind reads a property's name as a model reads it.
func kind(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.Contains(n, "verdict") || strings.Contains(n, "decision"):
		return "verdict"
	case strings.Contains(n, "confidence") || strings.Contains(n, "certainty"):
		return "confidence"
	case strings.Contains(n, "offense") || strings.Contains(n, "offence") || strings.Contains(n, "severity"):
		return "offense"
	case strings.Contains(n, "reason") || strings.Contains(n, "rationale") || strings.Contains(n, "explanation"):
		return "reasoning"
	}
	return ""
}

// enumValue is the enum's entry that says want (in any case), else its first.
func enumValue(enum []any, want string) []byte {
	pick := enum[0]
	for _, e := range enum {
		if s, ok := e.(string); ok && strings.EqualFold(s, want) {
			pick = e
			break
		}
	}
	b, err := json.Marshal(pick)
	if err != nil {
		return []byte("null")
	}
	return b
}
