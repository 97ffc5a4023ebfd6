package pipeline

import (
	"context"
	"encoding/json"
	"time"
)

// Role is the author of a chat message.
type Role string

// Chat roles, as in the OpenAI chat-completions API.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Message is one chat message sent to a model.
type Message struct {
	Role    Role   `json:"role"`
	Content string `json:"content"`
}

// Request is one model call, stated in domain terms: which tier, what to say,
// how to sample. The Completer decides which provider and model serve it.
type Request struct {
	Tier        Tier
	Messages    []Message
	Temperature float32 // 0 is a real temperature, not "unset"
	MaxTokens   int
	// Target, when set, names a model target of the tier to use instead of
	// the tier's default chain (judge diversity); empty means the tier's default.
	Target string
	// Purpose labels the call in logs and metrics (for example "judge:VERITAS").
	Purpose string
	// Priority is the thought's: "batch" prefers batch targets.
	Priority string
	// Timeout, when set, bounds the model's time on each try of this call:
	// from sending the request to its answer, waits for a rate limit, a
	// shared limit or a free slot excluded. Zero: the Completer's own.
	Timeout time.Duration
	// Schema, when set, asks for the answer as one JSON object matching it,
	// where the model target takes structured answers (see AnswerSchema);
	// elsewhere the request goes as text. The messages must still say how
	// to answer in text, and the answer must be read either way.
	Schema *AnswerSchema
	// Digest, when set, stands for Messages wherever a Completer keys an
	// answer (its cache): a SHA-256 its maker computed of everything
	// Messages are made of, so it differs whenever they differ. It lets a
	// caller ask a Peeker for an answer without making the messages first
	// (they are left nil then). Nil: the key is made of Messages themselves.
	Digest *[32]byte
}

// AnswerSchema asks a model for an answer that is one JSON object matching a
// JSON Schema (Request.Schema). A Completer passes it to the providers that
// take it (OpenAI's response_format json_schema, strict; vLLM's structured
// outputs apply it after the reasoning when it runs a reasoning parser) and
// asks the others in text, so a prompt that carries a schema must still say
// how to answer in text. The value is read-only once in a Request.
type AnswerSchema struct {
	// Name names the schema to the provider: letters, digits, _ and -, at
	// most 64 characters, as OpenAI's API asks.
	Name string
	// Schema is the JSON Schema, an object.
	Schema json.RawMessage
}

// Usage counts the tokens a call used.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Add returns the sum of two usages.
func (u Usage) Add(o Usage) Usage {
	return Usage{u.PromptTokens + o.PromptTokens, u.CompletionTokens + o.CompletionTokens, u.TotalTokens + o.TotalTokens}
}

// Response is a model's answer with its provenance.
type Response struct {
	// Content is the answer with any <think>...</think> block removed.
	Content string
	// Reasoning is the model's chain of thought: the reasoning_content field
	// or the stripped <think> block. It never leaks into Content.
	Reasoning string
	Provider  string
	Model     string
	Usage     Usage
	// Cached is true when the answer came from the cache, not the provider.
	Cached  bool
	Latency time.Duration
	// Target names the model target that answered; Fallback is true when it
	// was not the first of its tier's chain; ColdStart when the call met a
	// target that had been idle (a serverless container starting).
	Target    string
	Fallback  bool
	ColdStart bool
	// Hedged is true when a hedged request to the next target answered first.
	Hedged bool
	// Truncated is true when the model stopped at max_tokens
	// (finish_reason "length"): the answer, or the thinking before it, was cut.
	Truncated bool
	// CostUSD estimates the call's price from the target's per-token prices.
	CostUSD float64
	// Structured is true when the request's Schema went to the provider
	// (response_format json_schema) and it answered: the answer should be
	// the schema's JSON, though a provider that ignores the format answers
	// text. False for a request without a Schema, or one asked in text.
	Structured bool
}

// Completer answers model requests. Implementations must be safe for
// concurrent use and return soon after ctx ends (the tribunal's deadline
// relies on it). Errors that may succeed on a later try wrap ErrTransient;
// errors that never will wrap ErrPermanent.
type Completer interface {
	Complete(ctx context.Context, req Request) (Response, error)
}

// A Peeker is a Completer that may hold the answer to a request at hand
// (cached): Peek returns it as Complete would, Cached set, without asking a
// model or waiting for anything; ok is false when it holds none. The
// tribunal hears a judge whose answer is held without starting a goroutine
// for it. Peek reads only what keys an answer: a request with a Digest may
// come to it with its Messages not yet made.
type Peeker interface {
	Completer
	Peek(ctx context.Context, req Request) (resp Response, ok bool)
}

// CompleterFunc adapts a function to the Completer interface.
type CompleterFunc func(ctx context.Context, req Request) (Response, error)

// Complete calls f.
func (f CompleterFunc) Complete(ctx context.Context, req Request) (Response, error) {
	return f(ctx, req)
}
