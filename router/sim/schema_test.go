package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// A schema written here, not taken from noesis: the simulator must answer
// any schema as a constrained decoder would, in the schema's own order.
const testSchema = `{"type":"object","properties":{
	"decision":{"type":"string","enum":["approve","escalate","reject","skip"]},
	"certainty":{"type":"number","minimum":0,"maximum":1},
	"severity":{"type":"string","enum":["none","minor","major","capital"]},
	"tally":{"type":"integer","minimum":3},
	"tags":{"type":"array","items":{"type":"string","maxLength":4}},
	"explanation":{"type":"string","maxLength":30}},
	"required":["decision","certainty","severity","tally","tags","explanation"],"additionalProperties":false}`

// verdictLike is a judge's four fields, as a caller might ask for them.
const verdictLike = `{"type":"object","properties":{"verdict":{"type":"string","enum":["PASS","REVIEW","FAIL","ABSTAIN"]},` +
	`"confidence":{"type":"number"},"offense_level":{"type":"string"},"reasoning":{"type":"string"}}}`

func schemaCall(t *testing.T, url, model, task string, stream bool) (content, reasoning string, err error) {
	t.Helper()
	return call(t, url, model, task, testSchema, stream)
}

// call asks a judge about task, in schema unless it is "".
func call(t *testing.T, url, model, task, schema string, stream bool) (content, reasoning string, err error) {
	t.Helper()
	req := openai.ChatCompletionRequest{Model: model, MaxTokens: 8192, Stream: stream, //lint:ignore SA1019 noesis sends max_tokens, as vLLM reads it
		Messages: []openai.ChatCompletionMessage{
			{Role: "system", Content: "You are VERITAS, the judge of truth. Answer in lines beginning with this request's answer tag NZ0123456789abcdef."},
			{Role: "user", Content: "-----BEGIN THOUGHT DATA-----\n" + `{"task": "` + task + `"}` + "\n-----END THOUGHT DATA-----"}},
	}
	if schema != "" {
		req.ResponseFormat = &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{Name: "test", Schema: json.RawMessage(schema), Strict: true}}
	}
	if !stream {
		out, err := client(url).CreateChatCompletion(context.Background(), req)
		if err != nil {
			return "", "", err
		}
		return out.Choices[0].Message.Content, out.Choices[0].Message.ReasoningContent, nil
	}
	st, err := client(url).CreateChatCompletionStream(context.Background(), req)
	if err != nil {
		return "", "", err
	}
	defer st.Close()
	var c, r strings.Builder
	for {
		chunk, err := st.Recv()
		if err != nil {
			break
		}
		if len(chunk.Choices) > 0 {
			c.WriteString(chunk.Choices[0].Delta.Content)
			r.WriteString(chunk.Choices[0].Delta.ReasoningContent)
		}
	}
	return c.String(), r.String(), nil
}

// Honoured as vLLM with a reasoning parser does: the content is one JSON
// object with the schema's properties in its order, every value within its
// enum, bounds and length, the judge's own decision in it; the thinking is
// in reasoning_content, whatever the model's own think style.
func TestHonouredSchemaIsOneConformingObject(t *testing.T) {
	for _, stream := range []bool{false, true} {
		s, url := simtest.Start(t, sim.Config{})
		content, reasoning, err := schemaCall(t, url, "deepseek-ai/DeepSeek-R1-0528-fast", "wipe production tonight", stream)
		if err != nil {
			t.Fatal(err)
		}
		if reasoning == "" || strings.Contains(content, "think>") {
			t.Fatalf("stream %v: the thinking is not in reasoning_content: %q", stream, content)
		}
		dec := json.NewDecoder(strings.NewReader(content))
		var keys []string
		if tok, _ := dec.Token(); tok != json.Delim('{') {
			t.Fatalf("not an object: %q", content)
		}
		for dec.More() {
			tok, _ := dec.Token()
			keys = append(keys, tok.(string))
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				t.Fatal(err)
			}
		}
		if got := strings.Join(keys, ","); got != "decision,certainty,severity,tally,tags,explanation" {
			t.Errorf("properties %s, not in the schema's order", got)
		}
		var v struct {
			Decision    string   `json:"decision"`
			Certainty   float64  `json:"certainty"`
			Severity    string   `json:"severity"`
			Tally       int      `json:"tally"`
			Tags        []string `json:"tags"`
			Explanation string   `json:"explanation"`
		}
		strict := json.NewDecoder(strings.NewReader(content))
		strict.DisallowUnknownFields()
		if err := strict.Decode(&v); err != nil || strict.More() {
			t.Fatalf("%v: %q", err, content)
		}
		// The lexicon stops a wipe of production: no enum entry says FAIL, so
		// a constrained decoder takes the first; the offense is capital.
		in := s.Stats().Intents[sim.IntentKey("veritas", "wipe production tonight")]
		if in.Verdict != "FAIL" || v.Severity != "capital" || v.Certainty != in.Confidence || v.Tally != 3 {
			t.Errorf("%+v for the intent %+v", v, in)
		}
		if len([]rune(v.Explanation)) > 30 || len(v.Tags) != 1 || len([]rune(v.Tags[0])) > 4 {
			t.Errorf("lengths not held: %+v", v)
		}
		if s.Stats().Structured != 1 {
			t.Errorf("structured answers counted %d, want 1", s.Stats().Structured)
		}
	}
}

// The JSON answer is shorter than the tagged lines a judge writes in text:
// fewer tokens, so less time, as a model writes it.
func TestAStructuredAnswerCostsItsTokens(t *testing.T) {
	tokens := map[string]int{}
	for _, schema := range []string{"", verdictLike} {
		s, url := simtest.Start(t, sim.Config{Shape: "tagged-lines"})
		content, _, err := call(t, url, "deepseek-ai/DeepSeek-R1-0528-fast", "tidy the archive", schema, false)
		if err != nil {
			t.Fatal(err)
		}
		in := s.Stats().Intents[sim.IntentKey("veritas", "tidy the archive")]
		if schema != "" && in.AnswerTokens != (len(content)+3)/4 {
			t.Errorf("%d answer tokens for %d bytes of JSON", in.AnswerTokens, len(content))
		}
		tokens[schema] = in.AnswerTokens
	}
	if tokens[verdictLike] >= tokens[""] {
		t.Errorf("answer tokens: %d in the schema, %d in text", tokens[verdictLike], tokens[""])
	}
}

// FormatRefuse answers 400 naming response_format; FormatIgnore answers text.
func TestRefusedAndIgnoredFormats(t *testing.T) {
	for _, style := range []string{sim.ErrorsOpenAI, sim.ErrorsVLLM} {
		s, url := simtest.Start(t, sim.Config{ResponseFormat: sim.FormatRefuse, ErrorStyle: style})
		_, _, err := schemaCall(t, url, "deepseek-ai/DeepSeek-R1-0528-fast", "tidy the archive", false)
		var apiErr *openai.APIError
		var reqErr *openai.RequestError
		switch {
		case errors.As(err, &apiErr):
			if apiErr.HTTPStatusCode != 400 || (apiErr.Param == nil && !strings.Contains(apiErr.Message, "guided decoding")) {
				t.Errorf("%s: %+v", style, apiErr)
			}
		case errors.As(err, &reqErr):
			if reqErr.HTTPStatusCode != 400 || !bytes.Contains(reqErr.Body, []byte("guided decoding")) {
				t.Errorf("%s: %d %s", style, reqErr.HTTPStatusCode, reqErr.Body)
			}
		default:
			t.Fatalf("%s: %v, want a 400", style, err)
		}
		if s.Stats().Faults["response_format"] != 1 {
			t.Errorf("%s: refusals %v", style, s.Stats().Faults)
		}
	}
	s, url := simtest.Start(t, sim.Config{ResponseFormat: sim.FormatIgnore, Shape: "plain-lines"})
	content, _, err := schemaCall(t, url, "deepseek-ai/DeepSeek-R1-0528-fast", "tidy the archive", false)
	if err != nil || strings.HasPrefix(strings.TrimSpace(content), "{") || !strings.Contains(content, "VERDICT") || s.Stats().Structured != 0 {
		t.Fatalf("ignored: %q, %v", content, err)
	}
}
