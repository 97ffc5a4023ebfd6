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
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	openai "github.com/sashabaranov/go-openai"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/answer"
)

// openAIBackend speaks the OpenAI chat-completions API through go-openai
// (whose own retries are not used): Nebius, vLLM on Modal, any compatible
// endpoint, the simulator.
type openAIBackend struct {
	client     *openai.Client
	model      string
	where      string            // "model (target at provider)", for messages
	target     string            // the target's name
	redact     *strings.Replacer // removes every configured secret from messages
	structured *structuredUse    // whether a request's schema is sent
}

var _ Backend = (*openAIBackend)(nil)

// newOpenAIBackend is target t's backend at provider p, over client (whose
// idle connections the router owns); redact removes every configured secret.
func newOpenAIBackend(p Provider, t Target, client *http.Client, redact *strings.Replacer, log zerolog.Logger) *openAIBackend {
	oc := openai.DefaultConfig(p.APIKey)
	oc.BaseURL = strings.TrimRight(p.BaseURL, "/")
	oc.HTTPClient = headerDoer{c: client, headers: p.Headers}
	return &openAIBackend{client: openai.NewClientWithConfig(oc), model: t.Model, target: t.Name,
		where: fmt.Sprintf("%s (%s at %s)", t.Model, t.Name, p.Name), redact: redact, structured: newStructuredUse(t, log, redact)}
}

// Chat implements Backend.
func (b *openAIBackend) Chat(ctx context.Context, req *pipeline.Request) (Reply, error) {
	oreq, structured := b.request(req)
	started := time.Now()
	info := &respInfo{purpose: req.Purpose, sent: oreq}
	var out openai.ChatCompletionResponse
	var err error
	for {
		out, err = b.client.CreateChatCompletion(context.WithValue(ctx, respInfoKey{}, info), *oreq)
		info.giveBack() // given back when its body was made, unless the call failed before
		if err == nil || !structured || !b.structured.refusedBy(err) {
			break
		}
		// The target refuses the response format, not the request: ask again
		// at once in text (refusedBy remembered it), within the same call.
		oreq, structured = b.request(req)
		info = &respInfo{purpose: req.Purpose, sent: oreq}
	}
	return b.reply(ctx, &out, err, info, started, structured)
}

// release gives r back to chatRequests, with nothing of its request kept.
//
//go:noinline
func release(r *openai.ChatCompletionRequest) {
	*r = openai.ChatCompletionRequest{}
	chatRequests.Put(r)
}

// chatRequests holds the requests Chat gives the client: one off the
// stack (400 B of Chat's frame). The client has made the request's body
// when it hands the HTTP request to headerDoer, which gives the request
// back then (respInfo.giveBack): a call in flight holds neither it nor its
// messages' copies, as go-openai alone does not.
var chatRequests = sync.Pool{New: func() any { return new(openai.ChatCompletionRequest) }}

// request is the client's request of req, from chatRequests, and whether
// it asks for the answer in req's schema.
//
//go:noinline
func (b *openAIBackend) request(req *pipeline.Request) (*openai.ChatCompletionRequest, bool) {
	msgs := make([]openai.ChatCompletionMessage, len(req.Messages))
	for i, m := range req.Messages {
		msgs[i] = openai.ChatCompletionMessage{Role: string(m.Role), Content: m.Content}
	}
	temp := req.Temperature
	if temp == 0 {
		// go-openai omits a zero temperature (omitempty), which providers read
		// as their default (often 1.0); the smallest positive float32 is as greedy as 0.
		temp = 1e-45
	}
	oreq := chatRequests.Get().(*openai.ChatCompletionRequest)
	*oreq = openai.ChatCompletionRequest{
		// max_tokens, not max_completion_tokens: the field vLLM, Nebius and the
		// other OpenAI-compatible servers all read.
		Model: b.model, Messages: msgs, Temperature: temp, MaxTokens: req.MaxTokens, //lint:ignore SA1019 see above
	}
	structured := b.structured != nil && b.structured.ask(req)
	if structured {
		oreq.ResponseFormat = responseFormat(req.Schema)
	}
	return oreq, structured
}

// reply makes Chat's reply of the client's answer out, or its error err
// (classified; info holds what the response's headers said). Out of Chat,
// its locals are not on the stack while the call is in flight.
//
//go:noinline
func (b *openAIBackend) reply(ctx context.Context, out *openai.ChatCompletionResponse, err error, info *respInfo, started time.Time, structured bool) (Reply, error) {
	usage := pipeline.Usage{PromptTokens: out.Usage.PromptTokens, CompletionTokens: out.Usage.CompletionTokens, TotalTokens: out.Usage.TotalTokens}
	if err != nil {
		ce := b.classify(ctx, err, time.Since(started))
		ce.RetryAfter = info.retryAfter
		return Reply{Usage: usage}, ce
	}
	if len(out.Choices) == 0 {
		return Reply{Usage: usage}, &CallError{Class: ClassOther, Target: b.target, kinds: []error{pipeline.ErrTransient},
			msg: fmt.Sprintf("%s: %s returned no choices", pipeline.ErrTransient, b.where)}
	}
	msg := out.Choices[0].Message
	content, think := answer.SplitThink(msg.Content)
	return Reply{Content: content, Reasoning: strings.TrimSpace(strings.Join(nonEmpty(msg.ReasoningContent, think), "\n")),
		Usage: usage, Truncated: out.Choices[0].FinishReason == openai.FinishReasonLength, Structured: structured}, nil
}

// WarmUp asks the endpoint for its models (GET /models), waking a cold one.
func (b *openAIBackend) WarmUp(ctx context.Context) error {
	if _, err := b.client.ListModels(ctx); err != nil {
		return fmt.Errorf("%s", b.redact.Replace(err.Error()))
	}
	return nil
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
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
