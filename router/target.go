package router

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/breaker"
	"github.com/noesis-dev/noesis/pipeline/fair"
	"github.com/noesis-dev/noesis/pipeline/retry"
	"github.com/noesis-dev/noesis/pipeline/tracing"
)

// Per-call timeouts when Config.Timeout is zero.
const (
	// TTFTAllowance is added to the time a call's max_tokens take at the
	// target's measured speed.
	TTFTAllowance = 10 * time.Second
	// MinCallTimeout is the least timeout of a call.
	MinCallTimeout = 15 * time.Second
	// FirstCallTimeout bounds a call before its target has 8 answers (the origin's timeout).
	FirstCallTimeout = 120 * time.Second
	// MaxCallTimeout is the most timeout of a call.
	MaxCallTimeout = 10 * time.Minute
)

// settings are what every target of a router shares, given at New.
type settings struct {
	cfg      Config // validated, with its defaults
	quotas   Quotas // nil: no limits across processes
	observer CallObserver
	log      zerolog.Logger
	retry    retry.Policy // Attempts tries, from Backoff
}

// target is one model target and everything the router keeps of it: its
// backend, breaker, slots, rate-limit pause, learned pace and latencies.
// Its complete is one target's part of a call: tries, each through the
// target's limits to its backend. Safe for concurrent use.
type target struct {
	Target
	*settings
	provider Provider
	backend  Backend
	breaker  *breaker.Breaker
	slots    *fair.Slots // Concurrency, when limited; shared between agents in turn
	// blockedUntil (unix nanos) holds every call to the target back after a
	// 429, until the provider's Retry-After has passed: one rate-limited
	// answer slows the whole process down instead of each worker finding out.
	blockedUntil atomic.Int64
	pace         pacer        // the quota learned from 429s
	lastCall     atomic.Int64 // unix nanos of the last answer, for cold starts
	lat          latencies
}

// again is what follows a failed first try of the target (the course's,
// made at started; see course.tried): it calls the target up to Attempts
// times in all, backing off between tries (the router's retry.Policy:
// exponential from Backoff, doubling, ±20 % jitter), and waiting at least what a Retry-After asked for. It gives up
// with the last error when the next wait would outlast ctx, and at once on a
// permanent one (a 4xx other than 408 and 429). Only failures that say the
// target is broken count toward its breaker (see breaks): never a request
// the provider refused for what it holds, which is one thought's, not the
// target's, and never a call that failed for the load we put on the target
// (overloaded): that one is not tried again here, and comes back as
// ErrOverloaded.
//
// The first try is made outside the retry policy (by the course, from
// drive's frame), so that a call in flight holds none of the retrying's
// frames; the policy takes over only after it failed (retry.DoAfter).
//
//go:noinline
func (t *target) again(ctx context.Context, req *pipeline.Request, started time.Time, first error) (pipeline.Response, error) {
	var last error
	tries := 1
	failed := func(err error) error {
		if ns, ok := err.(notSent); ok {
			return retry.Permanent(andThen(last, ns.error))
		}
		if errors.Is(err, ErrOverloaded) {
			return retry.Permanent(andThen(last, err))
		}
		if breaks(err) && ctx.Err() == nil {
			t.breaker.Record(err)
		}
		t.log.Debug().Str("target", t.Name).Str("model", t.Model).Str("purpose", req.Purpose).Int("attempt", tries).Err(err).Msg("model call failed")
		last = err
		if errors.Is(err, pipeline.ErrPermanent) || ctx.Err() != nil {
			return retry.Permanent(err)
		}
		return err
	}
	return retry.DoAfter(ctx, t.retry, func() (pipeline.Response, error) {
		tries++
		resp, err := t.try(ctx, req)
		if err == nil {
			t.breaker.Record(nil)
			return resp, nil
		}
		return pipeline.Response{}, failed(err)
	}, started, pipeline.Response{}, failed(first))
}

// notSent is why a try did not reach the target (a pause, the pace, the
// thought's call budget, the agent's quota): no further try is made.
type notSent struct{ error }

// try is one try: it waits out the target's pause and pace, spends one of
// the thought's calls, admits it under the agent's quota and calls. A call
// that failed for our load comes back as ErrOverloaded. A course makes its
// first try with the same steps (attempt's open and close) around a call
// from drive's frame; try makes the tries after it.
func (t *target) try(ctx context.Context, req *pipeline.Request) (pipeline.Response, error) {
	var a attempt
	defer a.end() // a panic past open: the span, timeout and slot end, as on return
	if err := a.open(ctx, t, req); err != nil {
		return pipeline.Response{}, err
	}
	reply, err := chat(a.cctx, t.backend, req)
	return a.close(&reply, err)
}

// attempt is one try of a target: what its steps before the backend's call
// (open) leave for its steps after it (close).
type attempt struct {
	t        *target
	ctx      context.Context // the try's
	req      *pipeline.Request
	agent    string // admitted under its quota ("": none asked)
	reserved float64
	sent     time.Time
	slot     string // the slot's holder, while slotted
	slotted  bool
	cctx     context.Context // the call's: within its timeout, with its span
	cancel   context.CancelFunc
	span     trace.Span
	started  time.Time
	cold     bool
}

// open makes a try's steps up to the backend's call: it waits out the
// target's pause and pace, spends one of the thought's calls and admits it
// under the agent's quota (an error from these is notSent), then takes a
// slot of the target and its shared rate limit (an error from these is the
// try's, as close would make it), and starts the call's timeout, span and
// accounting. The call is then made in a.cctx.
func (a *attempt) open(ctx context.Context, t *target, req *pipeline.Request) error {
	a.t, a.ctx, a.req = t, ctx, req
	if err := t.waitUnblocked(ctx); err != nil {
		return notSent{err}
	}
	if err := t.pace.wait(ctx, t.Name); err != nil {
		return notSent{err}
	}
	if err := pipeline.SpendCall(ctx); err != nil {
		return notSent{err}
	}
	agent, reserved, err := t.admit(ctx, req)
	if err != nil {
		return notSent{err}
	}
	a.agent, a.reserved, a.sent = agent, reserved, time.Now()
	if err := a.take(); err != nil {
		_, err = a.after(pipeline.Response{}, err)
		return err
	}
	timeout, cold := t.timeout(req), t.cold()
	if cold {
		timeout = max(timeout, t.provider.ColdStartTimeout)
	}
	a.cold = cold
	var cctx context.Context
	cctx, a.cancel = context.WithTimeout(ctx, timeout)
	a.cctx, a.span = t.startSpan(cctx, req)
	a.started = time.Now()
	if t.observer != nil {
		t.observer.CallStarted(req.Tier, t.Target)
	}
	t.pace.send(a.started)
	return nil
}

// take takes one of the target's slots, when they are limited, and one
// call of its shared rate limit, when it has one. Calls that wait for a
// slot are served by priority, then to the agent holding the fewest: one
// agent's flood waits behind itself.
func (a *attempt) take() error {
	t := a.t
	if t.slots != nil {
		tenant := pipeline.TenantOf(a.ctx)
		agent, band := tenant.Agent, fair.Band(tenant.Priority)
		if tenant.FirstCome {
			agent, band = "", fair.Normal
		}
		if err := t.slots.Acquire(a.ctx, agent, band); err != nil {
			return fmt.Errorf("%w: %s: waiting for a free slot: %w", pipeline.ErrTransient, t.Name, err)
		}
		a.slot, a.slotted = agent, true
	}
	if t.quotas != nil && (t.RPM > 0 || t.TPM > 0) {
		if err := t.quotas.Take(a.ctx, t.Name, t.RPM, t.TPM); err != nil {
			a.end()
			return fmt.Errorf("%w: %s: waiting for the rate limit: %w", pipeline.ErrTransient, t.Name, err)
		}
	}
	return nil
}

// close makes a try's steps after the backend's call, whose reply and err
// it takes: the call's accounting (settle), its span, timeout and slot
// ended, then the try's (after).
func (a *attempt) close(reply *Reply, err error) (pipeline.Response, error) {
	resp, err := a.t.settle(a.cctx, a.span, a.req, reply, err, time.Since(a.started), a.cold)
	a.end()
	return a.after(resp, err)
}

// after settles the agent's quota with what the call spent, and makes a
// call that failed for our load an ErrOverloaded.
func (a *attempt) after(resp pipeline.Response, err error) (pipeline.Response, error) {
	t := a.t
	if a.agent != "" {
		t.quotas.SettleAgent(a.ctx, a.agent, resp.Usage.TotalTokens, resp.CostUSD, a.reserved)
	}
	if err != nil && a.ctx.Err() == nil && t.overloaded(err, a.req, a.sent) {
		// Our load, not the target's fault: no breaker counts it, and
		// no second try adds to the queue; the worker holds the thought.
		t.log.Debug().Str("target", t.Name).Str("purpose", a.req.Purpose).Err(err).Msg("model call overloaded the target")
		return pipeline.Response{}, t.overload(err)
	}
	return resp, err
}

// end ends what open started and close has not: the call's span, its
// timeout, the target's slot, in that order. It does nothing twice.
func (a *attempt) end() {
	if a.span != nil {
		a.span.End()
		a.span = nil
	}
	if a.cancel != nil {
		a.cancel()
		a.cancel = nil
	}
	if a.slotted {
		a.t.slots.Release(a.slot)
		a.slotted = false
	}
}

// admit asks the shared counters whether the agent whose thought ctx serves
// may make one more call to t under its quota, reserving the call's most
// expected cost; it returns the agent ("" when nothing was asked) and the
// reservation. Calls outside a thought, and every call when no agent has a
// quota, pass without asking.
func (t *target) admit(ctx context.Context, req *pipeline.Request) (string, float64, error) {
	if t.quotas == nil || !t.cfg.quotas() {
		return "", 0, nil
	}
	agent := pipeline.TenantOf(ctx).Agent
	if agent == "" {
		return "", 0, nil
	}
	q := t.cfg.quotaFor(agent)
	if !q.Active() {
		return "", 0, nil
	}
	reserve := 0.0
	if q.USD > 0 {
		reserve = t.mostCost(req)
	}
	if err := t.quotas.Admit(ctx, agent, q.RPM, q.TPM, q.USD, reserve); err != nil {
		if !errors.Is(err, pipeline.ErrQuota) { // the counters: the agent's, not the target's
			err = fmt.Errorf("%w: %w: agent %s's quota could not be checked: %w", pipeline.ErrTransient, pipeline.ErrQuota, agent, err)
		}
		return "", 0, err
	}
	return agent, reserve, nil
}

// mostCost is the most a call of req to t is expected to cost: its prompt
// at about four characters a token, and every token of its max_tokens.
func (t *target) mostCost(req *pipeline.Request) float64 {
	chars := 0
	for _, m := range req.Messages {
		chars += len(m.Content)
	}
	return (float64(chars/4)*t.PriceIn + float64(req.MaxTokens)*t.PriceOut) / 1e6
}

// startSpan starts the call's span. Made in the call's own steps, its
// attributes and options took 600 B of their frame; here they take them
// only while the span is made.
//
// Without a tracer provider set (OTLP off) it makes none: the span would
// record nothing, and its attributes and options were 500 B a call.
//
//go:noinline
func (t *target) startSpan(ctx context.Context, req *pipeline.Request) (context.Context, trace.Span) {
	if !tracing.On() {
		return ctx, trace.SpanFromContext(context.Background()) // the no-op span
	}
	return tracer().Start(ctx, "model call", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("noesis.tier", string(req.Tier)), attribute.String("noesis.provider", t.provider.Name),
		attribute.String("noesis.model", t.Model), attribute.String("noesis.purpose", req.Purpose)))
}

// chat makes the backend's call of *req. A panic in the client (an answer
// it could not take) comes back as an error wrapping pipeline.ErrPanic, as
// the pool's recovery makes of one in a delivery's goroutine, instead of
// ending the worker: a judge's call, but the last's, is made in a goroutine
// of the tribunal's, which has no recovery of its own.
//
// The call is made on the caller's goroutine. It was made in one of its own
// (chatShallow), since the caller's frames and the client's went past the
// 16 KiB a judge's goroutine is grown to; so a call in flight held two
// stacks of 16 KiB, the caller's waiting ~11 KB deep. With the router's way
// a course (course.go), a judge makes its call 3.1 KB from its goroutine's
// start and holds 8 KiB while it is in flight (BenchmarkInFlight over
// HTTP/2: 13 goroutines and 122-131 KB of stack a thought before, 9 and
// 69-74 KB after; docs/performance.md).
func chat(ctx context.Context, b Backend, req *pipeline.Request) (reply Reply, err error) {
	defer func() {
		if v := recover(); v != nil {
			reply, err = Reply{}, fmt.Errorf("%w: the model call: %v", pipeline.ErrPanic, v)
		}
	}()
	return b.Chat(ctx, req)
}

// tracer makes a span per upstream call, a child of the stage's span.
// tracer is asked of the global provider at each use, so a provider set
// later (or set again, as tests do) is the one that gets the spans.
func tracer() trace.Tracer { return otel.Tracer("github.com/noesis-dev/noesis/router") }

// settle accounts for a call's reply: span, observer, speed, cost, spend,
// a 429's pause; and makes the reply the call's response.
func (t *target) settle(ctx context.Context, span trace.Span, req *pipeline.Request, reply *Reply, err error, latency time.Duration, cold bool) (pipeline.Response, error) {
	cost := 0.0
	if err == nil {
		cost = (float64(reply.Usage.PromptTokens)*t.PriceIn+float64(reply.Usage.CompletionTokens)*t.PriceOut)/1e6 + latency.Hours()*t.CallHourUSD
	}
	if t.observer != nil {
		t.observer.CallFinished(req.Tier, t.Target, latency, reply.Usage, cost, err)
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("noesis.tokens.in", reply.Usage.PromptTokens), attribute.Int("noesis.tokens.out", reply.Usage.CompletionTokens),
			attribute.Bool("noesis.structured", reply.Structured))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, ErrorClass(err))
		}
	}
	if err != nil {
		return pipeline.Response{}, t.pauseFor(err)
	}
	t.lastCall.Store(time.Now().UnixNano())
	t.pace.ok(time.Now())
	t.lat.observe(latency, reply.Usage.CompletionTokens)
	if t.quotas != nil {
		t.quotas.Spend(ctx, t.Name, t.provider.Name, reply.Usage.TotalTokens, cost)
	}
	if cold {
		t.log.Info().Str("target", t.Name).Str("model", t.Model).Dur("latency", latency).Msg("first call to a cold target answered (cold start)")
	}
	return pipeline.Response{
		Content: reply.Content, Reasoning: reply.Reasoning, Provider: t.provider.Name, Model: t.Model, Latency: latency, ColdStart: cold,
		CostUSD: cost, Truncated: reply.Truncated, Usage: reply.Usage, Structured: reply.Structured,
	}, nil
}

// pauseFor gives a failed call's error the wait it asks for (a Retry-After;
// Backoff for a 429 without one), and pauses the whole target for a 429
// while it is not paced.
func (t *target) pauseFor(err error) error {
	var after time.Duration
	if ce, ok := errors.AsType[*CallError](err); ok {
		after = ce.RetryAfter
	}
	if errors.Is(err, pipeline.ErrRateLimited) && after <= 0 {
		after = t.cfg.Backoff // a 429 without Retry-After still pauses the target
	}
	if after <= 0 {
		return err
	}
	if errors.Is(err, pipeline.ErrRateLimited) && !t.pace.limited(time.Now()) {
		t.block(after)
	}
	return &pipeline.RetryAfterError{Err: err, After: after}
}

// timeout bounds one call of req to t (see Config.Timeout).
func (t *target) timeout(req *pipeline.Request) time.Duration {
	if req.Timeout > 0 {
		return req.Timeout
	}
	if t.cfg.Timeout > 0 {
		return t.cfg.Timeout
	}
	rate, ok := t.lat.speed()
	if !ok || req.MaxTokens <= 0 {
		return FirstCallTimeout
	}
	if math.IsInf(rate, 1) || rate <= 0 {
		return MinCallTimeout
	}
	d := TTFTAllowance + time.Duration(float64(req.MaxTokens)/rate*float64(time.Second))
	return min(max(d, MinCallTimeout), MaxCallTimeout)
}

// cold reports whether the next call may meet a cold container.
func (t *target) cold() bool {
	if t.provider.ColdStartTimeout <= 0 {
		return false
	}
	last := t.lastCall.Load()
	idle := t.provider.IdleWindow
	if idle <= 0 {
		idle = 5 * time.Minute
	}
	return last == 0 || time.Since(time.Unix(0, last)) > idle
}

// waitUnblocked waits out the target's rate-limit pause, or fails at once
// when ctx would end first.
func (t *target) waitUnblocked(ctx context.Context) error {
	until := time.Unix(0, t.blockedUntil.Load())
	wait := time.Until(until)
	if wait <= 0 {
		return nil
	}
	// Spread the calls the pause held over half its length again, so they
	// do not all meet the provider's limiter in the same instant.
	wait += rand.N(wait/2 + 1)
	until = time.Now().Add(wait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(until) {
		return &pipeline.RetryAfterError{After: wait,
			Err: fmt.Errorf("%w: %w: %s is rate limited for another %s", pipeline.ErrTransient, pipeline.ErrRateLimited, t.Name, wait.Round(time.Millisecond))}
	}
	return sleepCtx(ctx, wait)
}

// rateLimited reports whether the target is paused by a 429 right now.
func (t *target) rateLimited() bool { return time.Now().UnixNano() < t.blockedUntil.Load() }

// block pauses every call to the target for d (or longer, when it already is).
func (t *target) block(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := t.blockedUntil.Load()
		if cur >= until || t.blockedUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// modelAt is a model at a provider: two targets that share it share its context length.
type modelAt struct{ provider, model string }

func (t *target) modelAt() modelAt { return modelAt{t.provider.Name, t.Model} }

func sleepCtx(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", pipeline.ErrTransient, ctx.Err())
	case <-timer.C:
		return nil
	}
}
