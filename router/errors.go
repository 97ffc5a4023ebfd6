package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	openai "github.com/sashabaranov/go-openai"

	"github.com/noesis-dev/noesis/pipeline"
)

// The classes of a failed call (CallError.Class, ErrorClass).
const (
	ClassTimeout     = "timeout"
	ClassRateLimited = "rate_limited"
	ClassServer      = "server" // 5xx, 408
	// ClassRequest is a provider's refusal of one request for what it holds
	// (HTTP 400, 413, 422, or a 4xx whose code says context length or
	// content policy): it belongs to that request's thought, never to the
	// target; never retried, counted by no breaker (see apiSaid.refusal).
	ClassRequest  = "request"
	ClassClient   = "client" // other 4xx than 408 and 429 (401, 403, 404...): the account or the endpoint; never retried
	ClassCanceled = "canceled"
	ClassNetwork  = "network" // a lost or refused connection
	ClassBudget   = "budget"
	ClassOther    = "other"
	// ClassOverloaded is a timeout, a 503 or 504, or a lost connection that
	// came of the load we put on a working target (see ErrOverloaded).
	ClassOverloaded = "overloaded"
)

// ErrOverloaded marks a call that failed for the load we put on its target,
// not because the target is broken: the router's per-call timeout, a 503 or
// 504, or a lost connection, while the same target answered other calls of
// ours (it queues what we send; see target.overloaded). It comes alongside pipeline.ErrRateLimited
// and ErrTransient, with a Retry-After, because it is handled as a
// provider's pushback: no breaker counts it, the router does not try the
// target again at once, and the worker holds the thought, shrinks its limit
// and asks again after the wait rather than spending a delivery.
var ErrOverloaded = errors.New("overloaded")

// Why a provider refused a request (CallError.Refusal, with ClassRequest).
const (
	// RefusalContextLength: the prompt and max_tokens exceed the model's
	// context (or the request's size, HTTP 413, the endpoint's limit).
	RefusalContextLength = "context_length"
	// RefusalContentPolicy: the provider's content filter refused it.
	RefusalContentPolicy = "content_policy"
	// RefusalInvalid: anything else the provider could not accept in it.
	RefusalInvalid = "invalid_request"
)

// CallError is a failed model call with its facts as fields. It wraps
// pipeline.ErrTransient or pipeline.ErrPermanent (and ErrRateLimited for a
// 429, ErrRequestRefused for ClassRequest), so callers decide with
// errors.Is; its message never holds a secret.
type CallError struct {
	Class      string
	Status     int           // the HTTP status, when the provider answered
	Target     string        // the model target's name
	RetryAfter time.Duration // what the provider asked for (its Retry-After), if anything
	// What the provider said in its error body, when it answered one: its
	// code (or its type when it gave no code) and its message, trimmed to
	// maxSaid bytes and with every configured secret redacted.
	Code, Message string
	// Refusal says why a ClassRequest call was refused: RefusalContextLength,
	// RefusalContentPolicy or RefusalInvalid; empty for the other classes.
	Refusal string
	msg     string
	kinds   []error
}

func (e *CallError) Error() string   { return e.msg }
func (e *CallError) Unwrap() []error { return e.kinds }

// ErrorClass names the kind of a call error for metrics: one of the Class
// constants. Errors that are not a CallError: budget, rate_limited, canceled,
// timeout (by their sentinels), or other.
func ErrorClass(err error) string {
	var ce *CallError
	switch {
	case errors.Is(err, ErrOverloaded):
		return ClassOverloaded
	case errors.As(err, &ce):
		return ce.Class
	case errors.Is(err, pipeline.ErrRateLimited):
		return ClassRateLimited
	case errors.Is(err, pipeline.ErrBudgetExhausted):
		return ClassBudget
	case errors.Is(err, context.Canceled):
		return ClassCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout
	}
	return ClassOther
}

// breaks reports whether an error says the target is broken (and counts
// toward its breaker): timeouts, 5xx, lost connections; not 429 (busy), not
// an overload of ours (ErrOverloaded), not 4xx (our request, or our
// account), not a cancelled call or an exhausted budget.
func breaks(err error) bool {
	switch ErrorClass(err) {
	case ClassTimeout, ClassServer, ClassNetwork, ClassOther:
		return true
	}
	return false
}

// final reports whether err holds a refusal that no other target would
// answer differently: a content policy, a malformed request (not a context
// length, which a bigger model may take).
func final(err error) bool {
	if errors.Is(err, pipeline.ErrQuota) && !errors.Is(err, pipeline.ErrPermanent) {
		return true // the agent's requests or tokens, whatever the target
	}
	for _, ce := range callErrors(err) {
		if ce.Class == ClassRequest && ce.Refusal != RefusalContextLength {
			return true
		}
	}
	return false
}

// callErrors returns every *CallError in err's tree, joined or wrapped.
func callErrors(err error) []*CallError {
	if ce, ok := err.(*CallError); ok {
		return []*CallError{ce}
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		var out []*CallError
		for _, e := range u.Unwrap() {
			out = append(out, callErrors(e)...)
		}
		return out
	case interface{ Unwrap() error }:
		return callErrors(u.Unwrap())
	}
	return nil
}

// andThen reports why the tries stopped after the last try's error.
func andThen(last, stop error) error {
	if last == nil {
		return stop
	}
	return fmt.Errorf("%w; then %w", last, stop)
}

// maxSaid bounds the provider's message kept in a CallError: enough for
// vLLM's context-length sentence with its token counts, not a prompt it echoes.
const maxSaid = 400

// classify turns go-openai's error into a *CallError: its class, status, what
// the provider said, and a message with secrets redacted. elapsed is how long
// the call ran.
func (b *openAIBackend) classify(ctx context.Context, err error, elapsed time.Duration) *CallError {
	where := b.where
	ce := &CallError{Target: b.target}
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	switch {
	case errors.As(err, &apiErr):
		ce.Status = apiErr.HTTPStatusCode
	case errors.As(err, &reqErr):
		ce.Status = reqErr.HTTPStatusCode
	}
	said := providerSaid(err)
	ce.Code, ce.Message = b.redact.Replace(said.code()), trim(b.redact.Replace(said.Message), maxSaid)
	msg := b.redact.Replace(err.Error())
	if ce.Status >= 400 {
		msg = ce.said()
	}
	var netErr net.Error
	transient := []error{pipeline.ErrTransient}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		ce.Class, ce.kinds, ce.msg = ClassTimeout, transient, fmt.Sprintf("%s: no answer within %s", where, elapsed.Round(100*time.Millisecond))
	case errors.Is(err, context.Canceled):
		ce.Class, ce.kinds, ce.msg = ClassCanceled, []error{pipeline.ErrTransient, context.Canceled}, where+": "+context.Canceled.Error()
	case ce.Status == http.StatusTooManyRequests:
		ce.Class, ce.kinds = ClassRateLimited, []error{pipeline.ErrTransient, pipeline.ErrRateLimited}
		ce.msg = fmt.Sprintf("%s: %s: HTTP %d: %s", pipeline.ErrRateLimited, where, ce.Status, msg)
	case ce.Status == http.StatusRequestTimeout || ce.Status >= 500:
		ce.Class, ce.kinds, ce.msg = ClassServer, transient, fmt.Sprintf("%s: HTTP %d: %s", where, ce.Status, msg)
	case ce.Status >= 400:
		ce.Refusal = said.refusal(ce.Status)
		ce.Class, ce.kinds = ClassClient, []error{pipeline.ErrPermanent}
		if ce.Refusal != "" {
			ce.Class, ce.kinds = ClassRequest, []error{pipeline.ErrPermanent, pipeline.ErrRequestRefused}
			msg = pipeline.ErrRequestRefused.Error() + " (" + ce.Refusal + "): " + msg
		}
		ce.msg = fmt.Sprintf("%s: HTTP %d: %s", where, ce.Status, msg)
	case errors.As(err, &netErr):
		ce.Class, ce.kinds, ce.msg = ClassNetwork, transient, fmt.Sprintf("%s: network: %s", where, msg)
	default:
		ce.Class, ce.kinds, ce.msg = ClassOther, transient, where+": "+msg
	}
	prefix := pipeline.ErrTransient.Error()
	if ce.Class == ClassClient || ce.Class == ClassRequest {
		prefix = pipeline.ErrPermanent.Error()
	}
	ce.msg = prefix + ": " + ce.msg
	return ce
}

// said is what the provider said: its code (or its type) and its message.
func (e *CallError) said() string {
	switch {
	case e.Code != "" && e.Message != "":
		return e.Code + ": " + e.Message
	case e.Message != "":
		return e.Message
	case e.Code != "":
		return e.Code
	}
	return "no error message"
}

// apiSaid is a provider's error body (its param is not kept: the message
// names it), in any of the shapes providers use:
// OpenAI's and Nebius's {"error":{"message","type","param","code"}}, vLLM's
// {"object":"error","message","type","param","code":400} (older vLLM at the
// top level, newer under "error"), FastAPI's {"detail": ...} for a 422.
type apiSaid struct {
	Message string
	Type    string
	Code    string
}

// code is the provider's error code, or its type when the code is only the
// HTTP status again (vLLM's "code": 400) or missing.
func (s apiSaid) code() string {
	if s.Code != "" {
		if _, err := strconv.Atoi(s.Code); err != nil {
			return s.Code
		}
	}
	return s.Type
}

// refusal says why a 4xx (not 408 or 429) refused the request for what it
// holds, or "" when the status speaks of the account or the endpoint (401,
// 403, 404 and the rest without a telling code: ClassClient). 400, 413 and
// 422 are always about the request; any other 4xx is when its code, type or
// message names the context length or a content policy.
func (s apiSaid) refusal(status int) string {
	words := strings.ToLower(s.Code + " " + s.Type + " " + s.Message)
	switch {
	case status == http.StatusRequestEntityTooLarge || containsAny(words, "context_length", "context length", "maximum context", "context window", "too many tokens", "prompt is too long"):
		return RefusalContextLength
	case containsAny(words, "content_filter", "content_policy", "content policy", "content management policy", "moderation", "flagged"):
		return RefusalContentPolicy
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		return RefusalInvalid
	}
	return ""
}

// providerSaid reads what the provider said in its error body; empty when
// err carries no body that parses.
func providerSaid(err error) apiSaid {
	var apiErr *openai.APIError
	if errors.As(err, &apiErr) {
		s := apiSaid{Message: apiErr.Message, Type: apiErr.Type, Code: fmt.Sprint(apiErr.Code)}
		if apiErr.Code == nil {
			s.Code = ""
		}
		return s
	}
	var reqErr *openai.RequestError
	if !errors.As(err, &reqErr) || len(reqErr.Body) == 0 {
		return apiSaid{}
	}
	var body struct {
		Message json.RawMessage `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(reqErr.Body, &body) != nil {
		return apiSaid{Message: strings.TrimSpace(string(reqErr.Body))} // a proxy's text or HTML page
	}
	s := apiSaid{Type: body.Type, Code: strings.Trim(string(body.Code), `"`), Message: text(body.Message)}
	if s.Code == "null" {
		s.Code = ""
	}
	if s.Message == "" {
		s.Message = text(body.Detail)
	}
	return s
}

// text is a JSON string's value, or the raw JSON of anything else.
func text(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if string(raw) == "null" {
		return ""
	}
	return string(raw)
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// trim cuts s to at most n bytes, at a rune boundary, with an ellipsis;
// newlines become spaces.
func trim(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
