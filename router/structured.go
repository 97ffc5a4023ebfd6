package router

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/rs/zerolog"
	openai "github.com/sashabaranov/go-openai"

	"github.com/noesis-dev/noesis/pipeline"
)

// The settings of Target.Structured: whether a request's pipeline.Request.Schema
// goes to the target as response_format json_schema (strict).
const (
	// StructuredAuto (the default) asks with the schema. A target that
	// refuses it (a 400 or 422 that names response_format, json_schema,
	// guided decoding or structured output) is remembered for the process,
	// logged once at info, and the call is made again at once in text; so
	// are its later calls. No breaker counts the refusal and no thought is
	// dead-lettered for it. A target that takes the schema but ignores it
	// answers text, which the caller reads as text.
	StructuredAuto = "auto"
	// StructuredOn requires the schema: a refusal fails the call with the
	// provider's 400 (a request refused, dead-lettered), for a deployment
	// that must not run on text answers.
	StructuredOn = "on"
	// StructuredOff never sends a schema: the request goes in text.
	StructuredOff = "off"
)

// structuredUse is one target's use of structured answers: its setting and
// what the run has learned of it. Safe for concurrent use.
type structuredUse struct {
	mode    string
	refused atomic.Bool // the target refused response_format (auto only)
	target  string
	log     zerolog.Logger
	redact  *strings.Replacer
}

func newStructuredUse(t Target, log zerolog.Logger, redact *strings.Replacer) *structuredUse {
	mode := t.Structured
	if mode == "" {
		mode = StructuredAuto
	}
	return &structuredUse{mode: mode, target: t.Name, log: log, redact: redact}
}

// ask reports whether req goes to the target with its schema.
func (u *structuredUse) ask(req *pipeline.Request) bool {
	return req.Schema != nil && u.mode != StructuredOff && !u.refused.Load()
}

// state is the target's structured answers as noesis status shows them:
// its setting, or "refused" once an auto target refused them.
func (u *structuredUse) state() string {
	if u.refused.Load() {
		return "refused"
	}
	return u.mode
}

// refusedBy reports whether err is the provider refusing the response format
// of a call asked with a schema, so that the call is made again in text;
// the first refusal of an auto target is remembered and logged. An "on"
// target's refusal stays the call's error.
func (u *structuredUse) refusedBy(err error) bool {
	if u.mode != StructuredAuto || !refusesFormat(err) {
		return false
	}
	if u.refused.CompareAndSwap(false, true) {
		said := providerSaid(err)
		u.log.Info().Str("target", u.target).Str("said", trim(u.redact.Replace(said.Message), maxSaid)).
			Msg("target refuses structured answers (response_format json_schema): asking it in text from now on")
	}
	return true
}

// responseFormat is req's schema as go-openai sends it: json_schema, strict.
func responseFormat(s *pipeline.AnswerSchema) *openai.ChatCompletionResponseFormat {
	return &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
		JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{Name: s.Name, Schema: s.Schema, Strict: true}}
}

// formatWords are what a provider's refusal of the response format says:
// OpenAI-compatible gateways name the parameter, vLLM its guided decoding or
// structured outputs (or its grammar backend, for a schema it cannot compile).
var formatWords = []string{"response_format", "response format", "json_schema", "json schema", "guided_decoding", "guided decoding",
	"guided_json", "structured output", "structured_output", "grammar"}

// refusesFormat reports whether err is a 400 or 422 about the request's
// response format: its param is response_format, or its words name it.
func refusesFormat(err error) bool {
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	status, words := 0, ""
	switch {
	case errors.As(err, &apiErr):
		status, words = apiErr.HTTPStatusCode, apiErr.Message+" "+apiErr.Type
		if apiErr.Param != nil {
			words += " " + *apiErr.Param
		}
		if c, ok := apiErr.Code.(string); ok {
			words += " " + c
		}
	case errors.As(err, &reqErr):
		status, words = reqErr.HTTPStatusCode, string(reqErr.Body)
	default:
		return false
	}
	if status != http.StatusBadRequest && status != http.StatusUnprocessableEntity {
		return false
	}
	return containsAny(strings.ToLower(words), formatWords...)
}
