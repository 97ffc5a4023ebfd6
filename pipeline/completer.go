package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
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

// ErrRequestRefused marks a provider's refusal of one request for what it
// holds: a prompt past the model's context, content its policy refuses, a
// request it cannot read (HTTP 400, 413, 422, or an error code that says so).
// Always alongside ErrPermanent. It says nothing about the provider or the
// model, and other thoughts' requests go through: no circuit breaker counts
// it, and the thought is dead-lettered with the provider's words.
var ErrRequestRefused = errors.New("request refused")

// ErrQuota marks a call refused by its agent's own quota (requests or
// tokens per window: alongside ErrRateLimited and ErrTransient, with the wait,
// and no other target is tried; the month's budget: alongside ErrPermanent,
// and a target that costs nothing may still take the call). It is the
// agent's, not the model target's: no breaker counts it, and the limit of
// thoughts in flight does not shrink for it.
var ErrQuota = errors.New("agent quota")

// ErrRateLimited marks a provider's 429: always alongside ErrTransient. The
// worker holding the thought waits and tries again rather than spending one of
// the thought's deliveries.
var ErrRateLimited = errors.New("rate limited")

// ErrCircuitOpen marks a call not made because a circuit breaker is open
// (a judge's, or every target's of a chain): always alongside ErrTransient.
var ErrCircuitOpen = errors.New("circuit open")

// ErrBudgetExhausted marks a call refused because the thought has made as many
// upstream calls as its budget allows (see WithCallBudget). It is transient:
// a later delivery gets a fresh budget.
var ErrBudgetExhausted = errors.New("upstream call budget exhausted")

// RetryAfterError carries the wait a provider asked for (its Retry-After header).
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns the wait a provider asked for somewhere in err's chain.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > 0 {
		return ra.After, true
	}
	return 0, false
}

type budgetKey struct{}

// CallBudget counts the upstream calls one thought may still make. Safe for concurrent use.
type CallBudget struct{ left atomic.Int64 }

// WithCallBudget returns a context that allows n upstream calls (n <= 0: unlimited).
func WithCallBudget(ctx context.Context, n int) (context.Context, *CallBudget) {
	if n <= 0 {
		return ctx, nil
	}
	b := &CallBudget{}
	b.left.Store(int64(n))
	return context.WithValue(ctx, budgetKey{}, b), b
}

// SpendCall takes one upstream call from ctx's budget, or fails with
// ErrBudgetExhausted (wrapping ErrTransient) when none is left.
func SpendCall(ctx context.Context) error {
	b, _ := ctx.Value(budgetKey{}).(*CallBudget)
	if b == nil {
		return nil
	}
	if b.left.Add(-1) < 0 {
		return fmt.Errorf("%w: %w", ErrTransient, ErrBudgetExhausted)
	}
	return nil
}

// PartialError carries what a stage learned before it failed, such as the
// judges' votes and abstentions, so a dead letter can show it.
type PartialError struct {
	Err        error
	Transcript any
}

func (e *PartialError) Error() string { return e.Err.Error() }
func (e *PartialError) Unwrap() error { return e.Err }

type tenantKey struct{}

// Tenant is whose thought a model call serves: its agent and the thought's
// priority. The router shares a model target's slots and the agents' quotas
// by it.
type Tenant struct {
	Agent, Priority string
}

// WithTenant returns a context whose model calls serve tenant.
func WithTenant(ctx context.Context, tenant Tenant) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// TenantOf returns the tenant ctx's calls serve; the zero Tenant when none
// was set (a call outside any thought: a warm-up, a benchmark).
func TenantOf(ctx context.Context) Tenant {
	t, _ := ctx.Value(tenantKey{}).(Tenant)
	return t
}
