package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/answer"
	"github.com/noesis-dev/noesis/pipeline/fair"
)

// tracer makes a span per upstream call, a child of the stage's span.
// tracer is asked of the global provider at each use, so a provider set
// later (or set again, as tests do) is the one that gets the spans.
func tracer() trace.Tracer { return otel.Tracer("github.com/noesis-dev/noesis/router") }

// call makes one request to t's backend, within the target's slots, shared
// limits and per-call timeout, and accounts for it: span, observer, speed,
// cost, spend, a 429's pause.
func (c *Chain) call(ctx context.Context, t *target, req pipeline.Request) (pipeline.Response, error) {
	if t.slots != nil {
		// Calls that wait for a slot are served by priority, then to the
		// agent holding the fewest: one agent's flood waits behind itself.
		tenant := pipeline.TenantOf(ctx)
		if err := t.slots.Acquire(ctx, tenant.Agent, fair.Band(tenant.Priority)); err != nil {
			return pipeline.Response{}, fmt.Errorf("%w: %s: waiting for a free slot: %w", pipeline.ErrTransient, t.Name, err)
		}
		defer t.slots.Release(tenant.Agent)
	}
	if c.limiter != nil && (t.RPM > 0 || t.TPM > 0) {
		if err := c.limiter.Take(ctx, t.Name, t.RPM, t.TPM); err != nil {
			return pipeline.Response{}, fmt.Errorf("%w: %s: waiting for the rate limit: %w", pipeline.ErrTransient, t.Name, err)
		}
	}
	timeout, cold := c.callTimeout(t, req), t.cold()
	if cold {
		timeout = max(timeout, t.provider.ColdStartTimeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx, span := tracer().Start(ctx, "model call", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("noesis.tier", string(req.Tier)), attribute.String("noesis.provider", t.provider.Name),
		attribute.String("noesis.model", t.Model), attribute.String("noesis.purpose", req.Purpose)))
	defer span.End()
	started := time.Now()
	if c.obs != nil {
		c.obs.CallStarted(req.Tier, t.Target)
	}
	t.pace.send(started)
	reply, err := t.backend.Chat(ctx, req)
	latency := time.Since(started)
	cost := 0.0
	if err == nil {
		cost = (float64(reply.Usage.PromptTokens)*t.PriceIn+float64(reply.Usage.CompletionTokens)*t.PriceOut)/1e6 + latency.Hours()*t.CallHourUSD
	}
	if c.obs != nil {
		c.obs.CallFinished(req.Tier, t.Target, latency, reply.Usage, cost, err)
	}
	span.SetAttributes(attribute.Int("noesis.tokens.in", reply.Usage.PromptTokens), attribute.Int("noesis.tokens.out", reply.Usage.CompletionTokens),
		attribute.Bool("noesis.structured", reply.Structured))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, ErrorClass(err))
		var after time.Duration
		var ce *CallError
		if errors.As(err, &ce) {
			after = ce.RetryAfter
		}
		if errors.Is(err, pipeline.ErrRateLimited) && after <= 0 {
			after = c.cfg.Backoff // a 429 without Retry-After still pauses the target
		}
		if after > 0 {
			if errors.Is(err, pipeline.ErrRateLimited) && !t.pace.limited(time.Now()) {
				t.block(after)
			}
			err = &pipeline.RetryAfterError{Err: err, After: after}
		}
		return pipeline.Response{}, err
	}
	t.lastCall.Store(time.Now().UnixNano())
	t.pace.ok(time.Now())
	t.observe(latency, reply.Usage.CompletionTokens)
	if c.limiter != nil {
		c.limiter.Spend(ctx, t.Name, t.provider.Name, reply.Usage.TotalTokens, cost)
	}
	if cold {
		c.log.Info().Str("target", t.Name).Str("model", t.Model).Dur("latency", latency).Msg("first call to a cold target answered (cold start)")
	}
	return pipeline.Response{
		Content: reply.Content, Reasoning: reply.Reasoning, Provider: t.provider.Name, Model: t.Model, Latency: latency, ColdStart: cold,
		CostUSD: cost, Truncated: reply.Truncated, Usage: reply.Usage, Structured: reply.Structured,
	}, nil
}

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

// Chat implements Backend.
func (b *openAIBackend) Chat(ctx context.Context, req pipeline.Request) (Reply, error) {
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
	started := time.Now()
	info := &respInfo{purpose: req.Purpose}
	oreq := openai.ChatCompletionRequest{
		// max_tokens, not max_completion_tokens: the field vLLM, Nebius and the
		// other OpenAI-compatible servers all read.
		Model: b.model, Messages: msgs, Temperature: temp, MaxTokens: req.MaxTokens, //lint:ignore SA1019 see above
	}
	structured := b.structured != nil && b.structured.ask(req)
	if structured {
		oreq.ResponseFormat = responseFormat(req.Schema)
	}
	out, err := b.client.CreateChatCompletion(context.WithValue(ctx, respInfoKey{}, info), oreq)
	if err != nil && structured && b.structured.refusedBy(err) {
		// The target refuses the response format, not the request: ask again
		// at once in text, within the same call.
		structured, oreq.ResponseFormat, info = false, nil, &respInfo{purpose: req.Purpose}
		out, err = b.client.CreateChatCompletion(context.WithValue(ctx, respInfoKey{}, info), oreq)
	}
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
