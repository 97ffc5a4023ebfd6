package pipeline_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/noesis-dev/noesis/docs/contract"
	"github.com/noesis-dev/noesis/pipeline"
)

// The Go structs and the JSON Schemas in docs/contract/schemas describe the
// same shapes: every field has a property and every property a field, and an
// output's required properties are exactly its fields without omitempty.
func TestContractSchemasMatchStructs(t *testing.T) {
	schemas := readSchemaFiles(t)
	envelope := schemas["envelope"]
	cases := []struct {
		name     string
		typ      reflect.Type
		schema   map[string]any
		output   bool // required == the fields without omitempty
		embedded map[string]any
	}{
		{"thought", reflect.TypeFor[pipeline.Thought](), schemas["thought"], false, nil},
		{"thought.content", reflect.TypeFor[pipeline.Content](), sub(t, schemas["thought"], "properties", "content"), false, nil},
		{"thought.salience", reflect.TypeFor[pipeline.Salience](), sub(t, schemas["thought"], "properties", "salience"), false, nil},
		{"envelope", reflect.TypeFor[pipeline.Meta](), envelope, true, nil},
		{"usage", reflect.TypeFor[pipeline.Usage](), sub(t, envelope, "definitions", "usage"), true, nil},
		{"narrative", reflect.TypeFor[pipeline.Narrative](), schemas["narrative"], true, envelope},
		{"verdict", reflect.TypeFor[pipeline.Verdict](), schemas["verdict"], true, envelope},
		{"verdict.judge", reflect.TypeFor[pipeline.JudgeVote](), sub(t, schemas["verdict"], "definitions", "judge"), true, nil},
		{"analysis", reflect.TypeFor[pipeline.Analysis](), schemas["analysis"], true, envelope},
		{"transcript", reflect.TypeFor[pipeline.Transcript](), schemas["transcript"], true, nil},
		{"transcript.judge", reflect.TypeFor[pipeline.JudgeRecord](), sub(t, schemas["transcript"], "definitions", "judge"), true, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fields := jsonFields(c.typ)
			props, required := keys(c.schema["properties"]), strs(c.schema["required"])
			if c.embedded != nil {
				props = append(props, keys(c.embedded["properties"])...)
				required = append(required, strs(c.embedded["required"])...)
			}
			for name := range fields {
				if !slices.Contains(props, name) {
					t.Errorf("field %q of %s has no property in the schema", name, c.typ)
				}
			}
			for _, p := range props {
				if _, ok := fields[p]; !ok {
					t.Errorf("schema property %q has no field in %s", p, c.typ)
				}
			}
			for _, r := range required {
				if _, ok := fields[r]; !ok {
					t.Errorf("required property %q has no field in %s", r, c.typ)
				}
			}
			if !c.output {
				return
			}
			for name, omitempty := range fields {
				if got := slices.Contains(required, name); got == omitempty {
					t.Errorf("%s.%s: required in the schema is %v, but omitempty is %v", c.typ, name, got, omitempty)
				}
			}
		})
	}
}

// Outputs built by the Go types, with every field set and with only the
// required ones, are valid against their schemas.
func TestContractOutputsValidate(t *testing.T) {
	schemas := compiled(t)
	meta := pipeline.Meta{EventID: "evt-1", AgentID: "daimon-1", Model: "m", Provider: "sim", Cached: true,
		Target: "nebius", Fallback: true, ColdStart: true, Hedged: true, CostUSD: 0.0012, LatencyMS: 12,
		Usage: pipeline.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}, PromptVersion: pipeline.PromptVersion,
		CreatedAt: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	full := map[string]any{}
	m := meta
	m.Stage = pipeline.StageNarrative
	full[contract.Narrative] = pipeline.Narrative{Meta: m, Narrative: "I", Mode: pipeline.ModeTentative, ConfidenceCeiling: 0.7, Coherence: 0.68, MetaAwareness: 0.19, Thinking: "t"}
	m.Stage = pipeline.StageAnalysis
	full[contract.Analysis] = pipeline.Analysis{Meta: m, Analysis: "a", Thinking: "t"}
	m.Stage = pipeline.StageTribunal
	full[contract.Verdict] = pipeline.Verdict{Meta: m, Decision: pipeline.DecisionReview, ConsensusScore: 0.6,
		Judges: []pipeline.JudgeVote{{Name: "VERITAS", Pillar: "truth", Verdict: pipeline.VoteAbstain, Confidence: 0, Weight: 0.4,
			Offense: pipeline.OffenseNone, Abstained: true, AbstainReason: "r", AbstainKind: pipeline.AbstainAnswer, Model: "m",
			Provider: "sim", Target: "t", Fallback: true, ColdStart: true, Hedged: true, CostUSD: 0.1, Cached: true, LatencyMS: 3, Thinking: "x"}},
		AbstentionCount: 1, RequiresHumanReview: true, OffenseLevel: pipeline.OffenseNone, Reasoning: "r"}
	for name, v := range full {
		b, _ := json.Marshal(v)
		if err := contract.Validate(schemas, name, b); err != nil {
			t.Errorf("full %s: %v", name, err)
		}
	}
	tr := pipeline.Transcript{EventID: "evt-1", AgentID: "daimon-1", Stage: pipeline.StageTribunal, Decision: pipeline.DecisionReview,
		PromptVersion: pipeline.PromptVersion, CreatedAt: meta.CreatedAt, Judges: []pipeline.JudgeRecord{{Name: "VERITAS",
			Verdict: pipeline.VotePass, Reasoning: "r", AbstainReason: "a", Model: "m", Provider: "sim", Target: "t", Fallback: true,
			ColdStart: true, Hedged: true, CostUSD: 0.1, Cached: true, AskedAgain: true, LatencyMS: 3, Thinking: "x"}}}
	b, _ := json.Marshal(tr)
	if err := contract.Validate(schemas, contract.Transcript, b); err != nil {
		t.Errorf("full transcript: %v", err)
	}
	minimal := pipeline.Verdict{Meta: pipeline.Meta{EventID: "e", AgentID: "a", Stage: pipeline.StageTribunal},
		Decision: pipeline.DecisionUnavailable, Judges: []pipeline.JudgeVote{{Verdict: pipeline.VoteAbstain, Offense: pipeline.OffenseNone}}, OffenseLevel: pipeline.OffenseNone}
	b, _ = json.Marshal(minimal)
	if err := contract.Validate(schemas, contract.Verdict, b); err != nil {
		t.Errorf("minimal verdict: %v", err)
	}
	// And the schema is not a rubber stamp: a wrong decision, a narrative
	// under the verdict schema, a missing envelope field are refused.
	bad := strings.Replace(string(b), `"decision":"unavailable"`, `"decision":"maybe"`, 1)
	if contract.Validate(schemas, contract.Verdict, []byte(bad)) == nil {
		t.Error("a verdict with decision \"maybe\" passed")
	}
	n, _ := json.Marshal(full[contract.Narrative])
	if contract.Validate(schemas, contract.Verdict, n) == nil {
		t.Error("a narrative passed as a verdict")
	}
	noModel := strings.Replace(string(n), `"model":"m",`, "", 1)
	if contract.Validate(schemas, contract.Narrative, []byte(noModel)) == nil {
		t.Error("a narrative without its model passed")
	}
}

// The thought schema accepts what DecodeThought accepts and refuses what it
// refuses, for the rules a schema can state.
func TestContractThoughtAgreesWithDecoder(t *testing.T) {
	schemas := compiled(t)
	cases := []string{
		`{"event_id":"e","agent_id":"daimon-1","content":{"user_input":"x"}}`,
		`{"event_id":"e","agent_id":"daimon-1","content":{"user_input":"x","depth":5,"source":"s","session_id":"s"},"coherence":0.2,"salience":{"novelty":0.1,"relevance":1,"urgency":0,"confidence":0.5},"action":"a","outcome":"o","reasoning_trace":"r","timestamp":"2026-11-29T10:00:00Z","stages":["tribunal","analysis"],"priority":"batch","unknown":{"kept":"ignored"}}`,
		`{"agent_id":"daimon-1","content":{"user_input":"x"}}`,
		`{"event_id":"","agent_id":"daimon-1","content":{"user_input":"x"}}`,
		`{"event_id":"` + strings.Repeat("e", 257) + `","agent_id":"daimon-1","content":{"user_input":"x"}}`,
		`{"event_id":"e","agent_id":"daimon 1","content":{"user_input":"x"}}`,
		`{"event_id":"e","agent_id":"` + strings.Repeat("a", 129) + `","content":{"user_input":"x"}}`,
		`{"event_id":"e","agent_id":"daimon-1"}`,
		`{"event_id":"e","agent_id":"daimon-1","content":{"user_input":"   "}}`,
		`{"event_id":"e","agent_id":"daimon-1","content":{"user_input":"x","depth":6}}`,
		`{"event_id":"e","agent_id":"daimon-1","content":{"user_input":"x","depth":"deep"}}`,
		`{"event_id":"e","agent_id":"daimon-1","content":{"user_input":"x"},"coherence":1.5}`,
		`{"event_id":"e","agent_id":"daimon-1","content":{"user_input":"x"},"salience":{"urgency":-0.1}}`,
		`{"event_id":"e","agent_id":"daimon-1","content":{"user_input":"x"},"stages":["verdict"]}`,
		`{"event_id":"e","agent_id":"daimon-1","content":{"user_input":"x"},"priority":"urgent"}`,
		`{"event_id":"e","agent_id":"daimon-1","content":{"user_input":"x"},"timestamp":"yesterday"}`,
		`{"event_id":"e","agent_id":"daimon-1","content":{"user_input":"x"},"action":7}`,
	}
	for _, c := range cases {
		_, decErr := pipeline.DecodeThought([]byte(c), 0)
		schemaErr := contract.Validate(schemas, contract.Thought, []byte(c))
		if (decErr == nil) != (schemaErr == nil) {
			t.Errorf("%.90s: DecodeThought says %v, the schema says %v", c, decErr, schemaErr)
		}
	}
}

var (
	schemaMarker = regexp.MustCompile("<!-- schema: ([a-z-]+) -->\\s*```json\\n((?s:.*?))```")
	jsonBlock    = regexp.MustCompile("(?m)^```json$")
	natsPub      = regexp.MustCompile(`nats pub noesis\.thoughts\.\S+(?:[^\n']|\\\n)*'(\{[^']*\})'`)
)

// Every example payload in the README and docs/ is valid against its
// schema: JSON blocks say which schema they follow in a comment before them
// (<!-- schema: verdict -->), and thoughts in `nats pub` lines are thoughts.
func TestContractDocExamplesValidate(t *testing.T) {
	schemas := compiled(t)
	files := []string{"../README.md"}
	err := filepath.WalkDir("../docs", func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "node_modules" {
			return filepath.SkipDir
		}
		if err == nil && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		marked := schemaMarker.FindAllStringSubmatch(text, -1)
		if n := len(jsonBlock.FindAllStringIndex(text, -1)); n != len(marked) {
			t.Errorf("%s: %d json blocks, %d with a <!-- schema: name --> comment before them", f, n, len(marked))
		}
		for _, m := range marked {
			if err := contract.Validate(schemas, m[1], []byte(m[2])); err != nil {
				t.Errorf("%s: example %s: %v", f, m[1], err)
			}
			checked++
		}
		for _, m := range natsPub.FindAllStringSubmatch(text, -1) {
			if err := contract.Validate(schemas, contract.Thought, []byte(m[1])); err != nil {
				t.Errorf("%s: nats pub example: %v", f, err)
			}
			checked++
		}
	}
	if checked < 4 {
		t.Errorf("checked %d examples; the README and docs/contract.md hold at least 4", checked)
	}
}

func compiled(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	s, err := contract.Schemas()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readSchemaFiles reads the schemas as plain JSON, to compare their
// properties with the Go structs.
func readSchemaFiles(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	names, _ := filepath.Glob("../docs/contract/schemas/*.json")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		out[strings.TrimSuffix(filepath.Base(n), ".json")] = m
	}
	return out
}

// sub is the subschema s[section][name]: a property or a definition.
func sub(t *testing.T, s map[string]any, section, name string) map[string]any {
	t.Helper()
	p, ok := s[section].(map[string]any)[name].(map[string]any)
	if !ok {
		t.Fatalf("no %s %q", section, name)
	}
	return p
}

func keys(v any) []string {
	m, _ := v.(map[string]any)
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func strs(v any) []string {
	var out []string
	for _, x := range asSlice(v) {
		out = append(out, x.(string))
	}
	return out
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// jsonFields maps a struct's JSON field names (embedded structs flattened)
// to whether they are omitempty.
func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = strings.Contains(opts, "omitempty")
	}
	return out
}
