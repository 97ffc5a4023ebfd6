package pipeline

import (
	"context"
	"errors"
	"time"
)

// Role is the author of a chat message.
type Role string

// Chat roles, as in the OpenAI chat-completions API.
const (
	RoleSystem Role = "system"
	RoleUser   Role = "user"
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
}

// Completer answers model requests. Implementations must be safe for
// concurrent use. Errors that may succeed on a later try wrap ErrTransient;
// errors that never will wrap ErrPermanent.
type Completer interface {
	Complete(ctx context.Context, req Request) (Response, error)
}

// CompleterFunc adapts a function to the Completer interface.
type CompleterFunc func(ctx context.Context, req Request) (Response, error)

// Complete calls f.
func (f CompleterFunc) Complete(ctx context.Context, req Request) (Response, error) {
	return f(ctx, req)
}

// ErrTransient marks a failure that may pass: a timeout, a 429, a 5xx, a lost
// connection. The message carrying the work is redelivered later.
var ErrTransient = errors.New("transient failure")

// ErrPermanent marks a failure that retrying cannot fix: a rejected request
// or bad credentials. The message carrying the work is dead-lettered.
var ErrPermanent = errors.New("permanent failure")
