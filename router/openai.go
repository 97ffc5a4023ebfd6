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
)

// tracer makes a span per upstream call, a child of the stage's span.
// tracer is asked of the global provider at each use, so a provider set
// later (or set again, as tests do) is the one that gets the spans.
func tracer() trace.Tracer { return otel.Tracer("github.com/noesis-dev/noesis/router") }

// call makes one chat-completion request.
func (c *Chain) call(ctx context.Context, t *target, req pipeline.Request) (pipeline.Response, error) {
	if t.slots != nil {
		select {
		case t.slots <- struct{}{}:
			defer func() { <-t.slots }()
		case <-ctx.Done():
			return pipeline.Response{}, fmt.Errorf("%w: %s: waiting for a free slot: %w", pipeline.ErrTransient, t.Name, ctx.Err())
		}
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
	ctx, span := tracer().Start(ctx, "model call", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("noesis.tier", string(req.Tier)), attribute.String("noesis.provider", t.provider.Name),
		attribute.String("noesis.model", t.Model), attribute.String("noesis.purpose", req.Purpose)))
	defer span.End()
	started := time.Now()
	info := &respInfo{purpose: req.Purpose}
	if c.obs != nil {
		c.obs.CallStarted(req.Tier, t.Target)
	}
	out, err := t.client.CreateChatCompletion(context.WithValue(ctx, respInfoKey{}, info), openai.ChatCompletionRequest{
		// max_tokens, not max_completion_tokens: the field vLLM, Nebius and the
		// other OpenAI-compatible servers all read.
		Model: t.Model, Messages: msgs, Temperature: temp, MaxTokens: req.MaxTokens, //lint:ignore SA1019 see above
	})
	latency := time.Since(started)
	cost := 0.0
	if err == nil {
		cost = (float64(out.Usage.PromptTokens)*t.PriceIn+float64(out.Usage.CompletionTokens)*t.PriceOut)/1e6 + latency.Hours()*t.CallHourUSD
	}
	if err != nil {
		err = c.classify(ctx, t, err, timeout)
	}
	if c.obs != nil {
		c.obs.CallFinished(req.Tier, t.Target, latency, pipeline.Usage{PromptTokens: out.Usage.PromptTokens, CompletionTokens: out.Usage.CompletionTokens, TotalTokens: out.Usage.TotalTokens}, cost, err)
	}
	span.SetAttributes(attribute.Int("noesis.tokens.in", out.Usage.PromptTokens), attribute.Int("noesis.tokens.out", out.Usage.CompletionTokens))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, ErrorClass(err))
		if errors.Is(err, pipeline.ErrRateLimited) && info.retryAfter <= 0 {
			info.retryAfter = c.cfg.Backoff // a 429 without Retry-After still pauses the target
		}
		if info.retryAfter > 0 {
			if errors.Is(err, pipeline.ErrRateLimited) {
				t.block(info.retryAfter)
			}
			err = &pipeline.RetryAfterError{Err: err, After: info.retryAfter}
		}
		return pipeline.Response{}, err
	}
	if len(out.Choices) == 0 {
		return pipeline.Response{}, fmt.Errorf("%w: %s returned no choices", pipeline.ErrTransient, t.Model)
	}
	t.lastCall.Store(time.Now().UnixNano())
	t.observe(latency, out.Usage.CompletionTokens)
	if c.limiter != nil {
		c.limiter.Spend(ctx, t.Name, t.provider.Name, out.Usage.TotalTokens, cost)
	}
	if cold {
		c.log.Info().Str("target", t.Name).Str("model", t.Model).Dur("latency", latency).Msg("first call to a cold target answered (cold start)")
	}
	msg := out.Choices[0].Message
	answer, think := pipeline.SplitThink(msg.Content)
	reasoning := strings.TrimSpace(strings.Join(nonEmpty(msg.ReasoningContent, think), "\n"))
	return pipeline.Response{
		Content: answer, Reasoning: reasoning, Provider: t.provider.Name, Model: t.Model, Latency: latency, ColdStart: cold,
		CostUSD: cost, Truncated: out.Choices[0].FinishReason == openai.FinishReasonLength,
		Usage: pipeline.Usage{PromptTokens: out.Usage.PromptTokens, CompletionTokens: out.Usage.CompletionTokens, TotalTokens: out.Usage.TotalTokens},
	}, nil
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
