package sim

import (
	"fmt"
	"net/http"
	"strings"
)

// The shapes of the simulator's error bodies (Config.ErrorStyle).
const (
	// ErrorsOpenAI is OpenAI's and Nebius's shape:
	// {"error":{"message":…,"type":…,"param":…,"code":…}}.
	ErrorsOpenAI = "openai"
	// ErrorsVLLM is vLLM's OpenAI-compatible server's shape, at the top level:
	// {"object":"error","message":…,"type":"BadRequestError","param":null,"code":400}.
	ErrorsVLLM = "vllm"
)

// refusal is a 400 the server gives a request for what it holds, decided
// from the request alone, as a provider decides it.
type refusal struct {
	fault   string // the Stats.Faults key
	message string
	typ     string // OpenAI's error type
	param   string
	code    string // OpenAI's error code
}

// refuse returns why the server refuses req, if it does: a prompt that with
// max_tokens exceeds the model's context (the prompt's tokens estimated at
// four characters each, as the usage the simulator reports), or a user
// message holding a word the content filter blocks; before either, a
// response_format the server does not take (see formatRefusal).
func (s *Server) refuse(req chatRequest, promptTokens int, user string) *refusal {
	if r := s.formatRefusal(req); r != nil {
		return r
	}
	limit := s.cfg.ContextLengths[req.Model]
	if limit <= 0 {
		limit = s.cfg.ContextLength
	}
	if limit > 0 && promptTokens+req.MaxTokens > limit {
		if s.cfg.ErrorStyle == ErrorsVLLM {
			return &refusal{fault: "context_length", typ: "BadRequestError", message: fmt.Sprintf(
				"This model's maximum context length is %d tokens. However, you requested %d tokens (%d in the messages, %d in the completion). "+
					"Please reduce the length of the messages or completion.", limit, promptTokens+req.MaxTokens, promptTokens, req.MaxTokens)}
		}
		return &refusal{fault: "context_length", typ: "invalid_request_error", param: "messages", code: "context_length_exceeded", message: fmt.Sprintf(
			"This model's maximum context length is %d tokens. However, your messages resulted in %d tokens (%d in the messages, %d in the completion). "+
				"Please reduce the length of the messages or completion.", limit, promptTokens+req.MaxTokens, promptTokens, req.MaxTokens)}
	}
	lower := strings.ToLower(user)
	for _, w := range s.cfg.Blocked {
		if w != "" && strings.Contains(lower, strings.ToLower(w)) {
			r := &refusal{fault: "content_filter", typ: "invalid_request_error", param: "prompt", code: "content_filter", message: "The response was filtered " +
				"due to the prompt triggering the content management policy. Please modify your prompt and retry."}
			if s.cfg.ErrorStyle == ErrorsVLLM {
				r.typ, r.param, r.code = "BadRequestError", "", ""
			}
			return r
		}
	}
	return nil
}

// writeRefusal answers a refused request 400, in the configured style.
func (s *Server) writeRefusal(w http.ResponseWriter, r *refusal) {
	s.count("fault", r.fault)
	param := any(nil)
	if r.param != "" {
		param = r.param
	}
	if s.cfg.ErrorStyle == ErrorsVLLM {
		writeJSON(w, http.StatusBadRequest, map[string]any{"object": "error", "message": r.message, "type": r.typ, "param": param, "code": http.StatusBadRequest})
		return
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"message": r.message, "type": r.typ, "param": param, "code": r.code}})
}
