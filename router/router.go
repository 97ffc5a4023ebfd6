// Package router maps a stage's tier to an ordered list of model targets and
// calls them through OpenAI-compatible APIs (Nebius Token Factory, a vLLM
// server on Modal, any other compatible endpoint, or the noesis simulator).
// Its Chain implements pipeline.Completer: it owns the only retry loop (the
// SDK's own retries are not used), the fallback order and the answer cache.
package router

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	openai "github.com/sashabaranov/go-openai"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/noesis-dev/noesis/pipeline"
)

// The provider kinds the router can talk to.
const (
	KindNebius = "nebius" // Nebius Token Factory
	KindOpenAI = "openai" // any OpenAI-compatible endpoint (vLLM, Ollama, OpenAI)
	KindModal  = "modal"  // a vLLM server deployed on Modal.com (see modal/)
	KindSim    = "sim"    // the noesis simulator
)

// Per-call timeouts when Config.Timeout is zero.
const (
	TTFTAllowance    = 10 * time.Second
	MinCallTimeout   = 15 * time.Second
	FirstCallTimeout = 120 * time.Second // the origin's timeout
	MaxCallTimeout   = 10 * time.Minute
)

// DefaultNebiusBaseURL is Nebius Token Factory's OpenAI-compatible endpoint.
const DefaultNebiusBaseURL = "https://api.tokenfactory.nebius.com/v1/"

// The seed's models per tier.
const (
	DefaultFastModel      = "meta-llama/Llama-3.3-70B-Instruct-fast"
	DefaultReasoningModel = "deepseek-ai/DeepSeek-R1-0528-fast"
	DefaultDeepModel      = "Qwen/Qwen3-235B-A22B-Thinking-2507"
)

// Provider is one OpenAI-compatible endpoint and its credentials.
type Provider struct {
	Name    string
	Kind    string
	BaseURL string
	APIKey  string // never logged, never in an error
	// Headers are sent with every request: Modal's proxy auth (Modal-Key,
	// Modal-Secret). Their values are secrets too.
	Headers map[string]string
	// ColdStartTimeout, when set, replaces the call timeout for the first call
	// and for the first after an idle IdleWindow: a serverless GPU container
	// (Modal) may take 30-60 s to start.
	ColdStartTimeout time.Duration
	IdleWindow       time.Duration
}

// Target is one model at one provider.
type Target struct {
	Name     string
	Provider string
	Model    string
	// PriceIn and PriceOut are USD per million tokens, for cost estimates.
	PriceIn, PriceOut float64
	// CallHourUSD prices a call by its duration instead (self-hosted GPUs,
	// Modal): the GPUs' hourly price divided by the calls they serve at once.
	CallHourUSD float64
	// RPM and TPM limit requests and tokens per window across every worker
	// (with a Limiter); Concurrency limits this process's calls in flight. 0: no limit.
	RPM, TPM, Concurrency int
}

// Limiter keeps limits that hold across worker processes (consumers.KVLimits,
// in NATS). Implementations must be safe for concurrent use.
type Limiter interface {
	// Take waits until the target may make one more request.
	Take(ctx context.Context, target string, rpm, tpm int) error
	// Spend records a call's tokens and estimated cost.
	Spend(ctx context.Context, target, provider string, tokens int, costUSD float64)
	// BudgetSpent reports whether the provider's budget is spent.
	BudgetSpent(provider string) bool
}

// Config says which targets serve each tier, in order, and how calls are made.
type Config struct {
	Providers []Provider
	Targets   []Target
	// Tiers lists, per tier, the names of the targets to try in order.
	Tiers map[pipeline.Tier][]string
	// Timeout, when set, bounds every call. Zero (the default) sizes each
	// call's timeout by what it asks for: TTFTAllowance plus the time the
	// target needs to write the call's whole max_tokens at its measured speed
	// (the slowest tenth of its last 128 answers, tokens over latency), at
	// least MinCallTimeout; before a target has 8 answers, FirstCallTimeout.
	// So a reasoning judge may think through its budget, and a 512-token
	// narrative that hangs is given up after seconds, not minutes.
	Timeout time.Duration
	// Attempts is how often one target is tried before the next; default 3.
	Attempts int
	// Backoff is the wait before the second try; it doubles each try, with
	// ±20 % jitter; default 1 s (the origin's 1 s, 2 s).
	Backoff time.Duration
	// MaxIdleConnsPerHost sizes the shared HTTP client's idle pool; set it to
	// the total concurrency of the pools; default 64.
	MaxIdleConnsPerHost int
	// Breaker opens a target's circuit after failures in a row (timeouts,
	// 5xx, lost connections; not 429s and not 4xx); an open target is skipped
	// in favour of the next one. Zero values: 5 failures, 30 s, 2 successes.
	Breaker pipeline.BreakerConfig
	// OnBreakerChange, when set, is told of every target breaker's change.
	OnBreakerChange func(target string, from, to pipeline.BreakerState)
	// Hedge, per tier: when the first target has not answered within its
	// observed p95 latency (over its last 128 answers, once it has 20), send
	// the same request to the next target and take whichever answers first,
	// cancelling the other. Off by default.
	Hedge map[pipeline.Tier]bool
}

// Validate reports the first inconsistency in the config.
func (c *Config) Validate() error {
	providers := map[string]bool{}
	for _, p := range c.Providers {
		switch p.Kind {
		case KindNebius, KindOpenAI, KindModal, KindSim:
		default:
			return fmt.Errorf("router: provider %q has unknown kind %q (want nebius, openai, modal or sim)", p.Name, p.Kind)
		}
		if p.BaseURL == "" {
			return fmt.Errorf("router: provider %q has no base URL", p.Name)
		}
		providers[p.Name] = true
	}
	targets := map[string]bool{}
	for _, t := range c.Targets {
		if !providers[t.Provider] {
			return fmt.Errorf("router: target %q names unknown provider %q", t.Name, t.Provider)
		}
		if t.Model == "" {
			return fmt.Errorf("router: target %q has no model", t.Name)
		}
		targets[t.Name] = true
	}
	for tier, names := range c.Tiers {
		if len(names) == 0 {
			return fmt.Errorf("router: tier %s has no targets", tier)
		}
		for _, n := range names {
			if !targets[n] {
				return fmt.Errorf("router: tier %s names unknown target %q", tier, n)
			}
		}
	}
	return nil
}

type target struct {
	Target
	provider Provider
	client   *openai.Client
	// blockedUntil (unix nanos) holds every call to the target back after a
	// 429, until the provider's Retry-After has passed: one rate-limited
	// answer slows the whole process down instead of each worker finding out.
	blockedUntil atomic.Int64
	breaker      *pipeline.Breaker
	lastCall     atomic.Int64  // unix nanos of the last answer, for cold starts
	slots        chan struct{} // Concurrency, when limited

	latMu     sync.Mutex
	latencies [128]time.Duration // the last answers' latencies, a ring
	rates     [128]float64       // and their speeds, completion tokens per second
	latN      int
}

func (t *target) observe(d time.Duration, tokens int) {
	t.latMu.Lock()
	t.latencies[t.latN%len(t.latencies)] = d
	rate := math.Inf(1)
	if d > 0 {
		rate = float64(tokens) / d.Seconds()
	}
	t.rates[t.latN%len(t.rates)] = rate
	t.latN++
	t.latMu.Unlock()
}

// speed returns the slowest tenth of the target's recent speeds (tokens per
// second), or false below 8 answers.
func (t *target) speed() (float64, bool) {
	t.latMu.Lock()
	n := min(t.latN, len(t.rates))
	xs := append([]float64(nil), t.rates[:n]...)
	t.latMu.Unlock()
	if n < 8 {
		return 0, false
	}
	slices.Sort(xs)
	return xs[(n-1)/10], true
}

// callTimeout bounds one call of req to t (see Config.Timeout).
func (c *Chain) callTimeout(t *target, req pipeline.Request) time.Duration {
	if req.Timeout > 0 {
		return req.Timeout
	}
	if c.cfg.Timeout > 0 {
		return c.cfg.Timeout
	}
	rate, ok := t.speed()
	if !ok || req.MaxTokens <= 0 {
		return FirstCallTimeout
	}
	if math.IsInf(rate, 1) || rate <= 0 {
		return MinCallTimeout
	}
	d := TTFTAllowance + time.Duration(float64(req.MaxTokens)/rate*float64(time.Second))
	return min(max(d, MinCallTimeout), MaxCallTimeout)
}

// p95 returns the target's observed p95 latency, or false below 20 answers.
func (t *target) p95() (time.Duration, bool) {
	t.latMu.Lock()
	n := min(t.latN, len(t.latencies))
	xs := append([]time.Duration(nil), t.latencies[:n]...)
	t.latMu.Unlock()
	if n < 20 {
		return 0, false
	}
	slices.Sort(xs)
	return xs[(n*95+99)/100-1], true
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
	if dl, ok := ctx.Deadline(); ok && dl.Before(until) {
		return &pipeline.RetryAfterError{After: wait,
			Err: fmt.Errorf("%w: %w: %s is rate limited for another %s", pipeline.ErrTransient, pipeline.ErrRateLimited, t.Name, wait.Round(time.Millisecond))}
	}
	return sleepCtx(ctx, wait)
}

// rateLimited reports whether the target is paused by a 429 right now.
func (t *target) rateLimited() bool { return time.Now().UnixNano() < t.blockedUntil.Load() }

func (t *target) block(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := t.blockedUntil.Load()
		if cur >= until || t.blockedUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

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

// respInfoKey carries a *respInfo through a call's context to the HTTP
// client, which fills in what go-openai's errors do not keep: Retry-After.
type respInfoKey struct{}

type respInfo struct{ retryAfter time.Duration }

func withTargetDefaults(b pipeline.BreakerConfig) pipeline.BreakerConfig {
	if b.Failures <= 0 {
		b.Failures = 5
	}
	if b.Cooldown <= 0 {
		b.Cooldown = 30 * time.Second
	}
	return b
}

// headerDoer is the HTTP client go-openai calls through: it adds the
// provider's headers and reads what go-openai's errors do not keep.
type headerDoer struct {
	c       *http.Client
	headers map[string]string
}

func (d headerDoer) Do(req *http.Request) (*http.Response, error) {
	for k, v := range d.headers {
		req.Header.Set(k, v)
	}
	resp, err := d.c.Do(req)
	if resp != nil && resp.StatusCode >= 400 {
		if info, ok := req.Context().Value(respInfoKey{}).(*respInfo); ok {
			info.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
	}
	return resp, err
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// tracer makes a span per upstream call, a child of the stage's span.
var tracer = otel.Tracer("github.com/noesis-dev/noesis/router")

// Observer is told of every upstream call, for metrics. Implementations must
// be safe for concurrent use and must not block.
type Observer interface {
	CallStarted(tier pipeline.Tier, t Target)
	// costUSD is the call's estimated price (per-token prices, or GPU time
	// for CallHourUSD targets); 0 for a failed call.
	CallFinished(tier pipeline.Tier, t Target, d time.Duration, usage pipeline.Usage, costUSD float64, err error)
}

// ErrorClass names the kind of a call error for metrics: timeout,
// rate_limited, server (5xx), client (4xx), canceled, budget, or other.
func ErrorClass(err error) string {
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	status := 0
	switch {
	case errors.As(err, &apiErr):
		status = apiErr.HTTPStatusCode
	case errors.As(err, &reqErr):
		status = reqErr.HTTPStatusCode
	}
	msg := err.Error()
	switch {
	case errors.Is(err, pipeline.ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, pipeline.ErrBudgetExhausted):
		return "budget"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "no answer within"):
		return "timeout"
	case status >= 500 || strings.Contains(msg, "HTTP 5"):
		return "server"
	case status >= 400 || strings.Contains(msg, "HTTP 4"):
		return "client"
	}
	return "other"
}

// Chain calls a tier's targets in order until one answers. Safe for concurrent use.
type Chain struct {
	cfg     Config
	targets map[string]*target
	tiers   map[pipeline.Tier][]*target
	cache   *pipeline.Cache
	log     zerolog.Logger
	redact  *strings.Replacer
	obs     Observer
	limiter Limiter
	http    *http.Client // HTTP/1.1, or HTTP/2 where TLS offers it
	h2c     *http.Client // HTTP/2 without TLS: the simulator
}

var _ pipeline.Completer = (*Chain)(nil)

// New builds a Chain over one shared HTTP client. cache may be nil (no caching).
func New(cfg Config, cache *pipeline.Cache, log zerolog.Logger) (*Chain, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.MaxIdleConnsPerHost <= 0 {
		cfg.MaxIdleConnsPerHost = 64
	}
	c := &Chain{cfg: cfg, targets: map[string]*target{}, tiers: map[pipeline.Tier][]*target{}, cache: cache, log: log}
	c.http = NewHTTPClient(cfg.MaxIdleConnsPerHost, false)
	c.h2c = NewHTTPClient(cfg.MaxIdleConnsPerHost, true)
	var secrets []string
	providers := map[string]Provider{}
	for _, p := range cfg.Providers {
		providers[p.Name] = p
		if len(p.APIKey) >= 4 {
			secrets = append(secrets, p.APIKey, "[REDACTED]")
		}
		for _, v := range p.Headers {
			if len(v) >= 4 {
				secrets = append(secrets, v, "[REDACTED]")
			}
		}
	}
	c.redact = strings.NewReplacer(secrets...)
	for _, t := range cfg.Targets {
		p := providers[t.Provider]
		oc := openai.DefaultConfig(p.APIKey)
		oc.BaseURL = strings.TrimRight(p.BaseURL, "/")
		doer := headerDoer{c: c.http, headers: p.Headers}
		if p.Kind == KindSim {
			doer.c = c.h2c
		}
		oc.HTTPClient = doer
		tg := &target{Target: t, provider: p, client: openai.NewClientWithConfig(oc), breaker: pipeline.NewBreaker(withTargetDefaults(cfg.Breaker))}
		if t.Concurrency > 0 {
			tg.slots = make(chan struct{}, t.Concurrency)
		}
		if fn := cfg.OnBreakerChange; fn != nil {
			name := t.Name
			tg.breaker.OnChange = func(from, to pipeline.BreakerState) { fn(name, from, to) }
		}
		c.targets[t.Name] = tg
	}
	for tier, names := range cfg.Tiers {
		for _, n := range names {
			c.tiers[tier] = append(c.tiers[tier], c.targets[n])
		}
	}
	return c, nil
}

// NewHTTPClient returns a client whose transport keeps idle connections for
// the given concurrency per host (Go's default keeps 2, and re-handshakes
// under load). It speaks HTTP/2 to HTTPS endpoints that offer it (Nebius);
// with h2c it speaks HTTP/2 without TLS, which only the simulator is assumed
// to understand (a vLLM server on plain HTTP gets HTTP/1.1). Timeouts are set
// per call by context, not on the client.
func NewHTTPClient(idlePerHost int, h2c bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0 // no global cap; the per-host cap rules
	tr.MaxIdleConnsPerHost = idlePerHost
	tr.IdleConnTimeout = 90 * time.Second
	if h2c {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Transport: tr}
}

// SetLimiter enforces shared limits and budgets. Call it before the chain is used.
func (c *Chain) SetLimiter(l Limiter) { c.limiter = l }

// SetObserver makes o see every upstream call. Call it before the chain is used.
func (c *Chain) SetObserver(o Observer) { c.obs = o }

// BreakerStates returns each target's circuit-breaker state.
func (c *Chain) BreakerStates() map[string]string {
	out := make(map[string]string, len(c.targets))
	for name, t := range c.targets {
		out[name] = string(t.breaker.State())
	}
	return out
}

// WarmUp calls each cold-start target once (GET /models, within its cold-start
// timeout), so the first thought does not wait for a container to start. It
// returns when every warm-up has ended, and reports the failures.
func (c *Chain) WarmUp(ctx context.Context) error {
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range c.targets {
		if t.provider.ColdStartTimeout <= 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx, cancel := context.WithTimeout(ctx, t.provider.ColdStartTimeout)
			defer cancel()
			started := time.Now()
			if _, err := t.client.ListModels(wctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("warm up %s: %s", t.Name, c.redact.Replace(err.Error())))
				mu.Unlock()
				return
			}
			t.lastCall.Store(time.Now().UnixNano())
			c.log.Info().Str("target", t.Name).Dur("took", time.Since(started)).Msg("target warmed up")
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Targets returns the model targets of a tier, in order.
func (c *Chain) Targets(t pipeline.Tier) []Target {
	var out []Target
	for _, x := range c.tiers[t] {
		out = append(out, x.Target)
	}
	return out
}

// Close drops the idle connections of the shared clients.
func (c *Chain) Close() {
	c.http.CloseIdleConnections()
	c.h2c.CloseIdleConnections()
}

// Complete answers req with the first target of its tier that succeeds.
// req.Target, when set, puts that target first. Errors wrap
// pipeline.ErrTransient or pipeline.ErrPermanent and never contain an API key.
func (c *Chain) Complete(ctx context.Context, req pipeline.Request) (pipeline.Response, error) {
	chain := c.tiers[req.Tier]
	if req.Target != "" {
		t, ok := c.targets[req.Target]
		if !ok {
			return pipeline.Response{}, fmt.Errorf("%w: unknown model target %q", pipeline.ErrPermanent, req.Target)
		}
		chain = append([]*target{t}, without(chain, t)...)
	}
	if len(chain) == 0 {
		return pipeline.Response{}, fmt.Errorf("%w: no model target for tier %s", pipeline.ErrPermanent, req.Tier)
	}
	if req.Priority == "batch" && req.Target == "" {
		chain = batchFirst(chain)
	}
	var errs []error
	var open []*target // targets whose breaker lets calls through, in order
	first := -1        // index in chain of the first of them
	for i, t := range chain {
		if c.limiter != nil && c.limiter.BudgetSpent(t.provider.Name) {
			errs = append(errs, fmt.Errorf("%w: %s: provider %s has spent its budget", pipeline.ErrTransient, t.Name, t.provider.Name))
			continue
		}
		if !t.breaker.Allow() {
			errs = append(errs, &pipeline.RetryAfterError{After: t.breaker.RetryIn(),
				Err: fmt.Errorf("%w: %w: %s (%s at %s) after repeated failures", pipeline.ErrTransient, pipeline.ErrCircuitOpen, t.Model, t.Name, t.provider.Name)})
			continue
		}
		if first < 0 {
			first = i
		}
		open = append(open, t)
	}
	if c.cfg.Hedge[req.Tier] && len(open) >= 2 {
		if d, ok := open[0].p95(); ok {
			resp, err := c.hedge(ctx, req, open[0], open[1], d)
			if err == nil {
				resp.Fallback = resp.Target != chain[0].Name
				return resp, nil
			}
			errs = append(errs, err)
			open = open[2:]
		}
	}
	for i, t := range open {
		if i < len(open)-1 && t.rateLimited() {
			// Paused by a 429's Retry-After: the next target takes the traffic
			// meanwhile, and this one has it back once the pause is over.
			errs = append(errs, fmt.Errorf("%w: %w: %s is rate limited", pipeline.ErrTransient, pipeline.ErrRateLimited, t.Name))
			continue
		}
		resp, err := c.viaCache(ctx, t, req)
		if err == nil {
			resp.Fallback = t != chain[0]
			return resp, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	err := errors.Join(errs...)
	if len(errs) == 1 {
		err = errs[0]
	}
	return pipeline.Response{}, err
}

// batchFirst puts the batch targets (Modal: self-hosted GPUs, cheap for bulk,
// slow to start) before the others, as the seed's routing table says; the
// order within each group stays.
func batchFirst(chain []*target) []*target {
	out := make([]*target, 0, len(chain))
	for _, t := range chain {
		if t.provider.Kind == KindModal {
			out = append(out, t)
		}
	}
	for _, t := range chain {
		if t.provider.Kind != KindModal {
			out = append(out, t)
		}
	}
	return out
}

// viaCache answers req from t, through the cache.
func (c *Chain) viaCache(ctx context.Context, t *target, req pipeline.Request) (pipeline.Response, error) {
	key := pipeline.CacheKey(t.provider.Name, t.Model, req)
	resp, err := c.cache.Do(ctx, req.Tier, key, func(ctx context.Context) (pipeline.Response, error) {
		return c.tryTarget(ctx, t, req)
	})
	if err == nil {
		resp.Target = t.Name
	}
	return resp, err
}

// hedge asks primary, and backup too once primary has taken longer than
// after (or failed); the first answer wins and the other call is cancelled.
func (c *Chain) hedge(ctx context.Context, req pipeline.Request, primary, backup *target, after time.Duration) (pipeline.Response, error) {
	type result struct {
		resp   pipeline.Response
		err    error
		backup bool
	}
	results := make(chan result, 2)
	pctx, cancelPrimary := context.WithCancel(ctx)
	defer cancelPrimary()
	bctx, cancelBackup := context.WithCancel(ctx)
	defer cancelBackup()
	go func() {
		r, err := c.viaCache(pctx, primary, req)
		results <- result{r, err, false}
	}()
	timer := time.NewTimer(after)
	defer timer.Stop()
	pending, hedged := 1, false
	startBackup := func() {
		if !hedged {
			hedged = true
			pending++
			go func() {
				r, err := c.viaCache(bctx, backup, req)
				results <- result{r, err, true}
			}()
		}
	}
	var errs []error
	for pending > 0 {
		select {
		case <-timer.C:
			startBackup()
		case r := <-results:
			pending--
			if r.err == nil {
				if r.backup {
					cancelPrimary()
					r.resp.Hedged = true
					c.log.Debug().Str("winner", backup.Name).Str("loser", primary.Name).Dur("after", after).Msg("hedge won")
				} else {
					cancelBackup()
				}
				return r.resp, nil
			}
			errs = append(errs, r.err)
			if !r.backup {
				startBackup() // the primary failed: the backup is now a plain fallback
			}
		}
	}
	return pipeline.Response{}, errors.Join(errs...)
}

func without(list []*target, t *target) []*target {
	out := make([]*target, 0, len(list))
	for _, x := range list {
		if x != t {
			out = append(out, x)
		}
	}
	return out
}

// tryTarget calls one target up to Attempts times, backing off between tries
// with jitter, and waiting at least what a Retry-After asked for. It gives
// up early when the wait would outlast ctx.
func (c *Chain) tryTarget(ctx context.Context, t *target, req pipeline.Request) (pipeline.Response, error) {
	var err error
	for attempt := 1; attempt <= c.cfg.Attempts; attempt++ {
		if attempt > 1 {
			wait := c.cfg.Backoff << (attempt - 2)
			wait += time.Duration((rand.Float64()*0.4 - 0.2) * float64(wait))
			if ra, ok := pipeline.RetryAfter(err); ok && ra > wait {
				wait = ra
			}
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
				break
			}
			if serr := sleepCtx(ctx, wait); serr != nil {
				return pipeline.Response{}, fmt.Errorf("%w (after %d tries: %w)", serr, attempt-1, err)
			}
		}
		if werr := t.waitUnblocked(ctx); werr != nil {
			err = andThen(err, werr)
			break
		}
		if berr := pipeline.SpendCall(ctx); berr != nil {
			err = andThen(err, berr)
			break
		}
		var resp pipeline.Response
		resp, err = c.call(ctx, t, req)
		if err == nil {
			t.breaker.Record(true)
			return resp, nil
		}
		if breaks(err) && ctx.Err() == nil {
			t.breaker.Record(false)
		}
		c.log.Debug().Str("target", t.Name).Str("model", t.Model).Str("purpose", req.Purpose).Int("attempt", attempt).Err(err).Msg("model call failed")
		if errors.Is(err, pipeline.ErrPermanent) || ctx.Err() != nil {
			break
		}
	}
	return pipeline.Response{}, err
}

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
	ctx, span := tracer.Start(ctx, "model call", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("noesis.tier", string(req.Tier)), attribute.String("noesis.provider", t.provider.Name),
		attribute.String("noesis.model", t.Model), attribute.String("noesis.purpose", req.Purpose)))
	defer span.End()
	started := time.Now()
	info := &respInfo{}
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
	if c.obs != nil {
		c.obs.CallFinished(req.Tier, t.Target, latency, pipeline.Usage{PromptTokens: out.Usage.PromptTokens, CompletionTokens: out.Usage.CompletionTokens, TotalTokens: out.Usage.TotalTokens}, cost, err)
	}
	span.SetAttributes(attribute.Int("noesis.tokens.in", out.Usage.PromptTokens), attribute.Int("noesis.tokens.out", out.Usage.CompletionTokens))
	if err != nil {
		err = c.classify(ctx, t, err, timeout)
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

// breaks reports whether an error says the target is broken (and counts
// toward its breaker): timeouts, 5xx, lost connections; not 429 (busy), not
// 4xx (our request), not a cancelled call or an exhausted budget.
func breaks(err error) bool {
	switch ErrorClass(err) {
	case "timeout", "server", "other":
		return true
	}
	return false
}

// andThen reports why the tries stopped after the last try's error.
func andThen(last, stop error) error {
	if last == nil {
		return stop
	}
	return fmt.Errorf("%w; then %w", last, stop)
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

// classify maps a call error to transient or permanent, with secrets redacted.
func (c *Chain) classify(ctx context.Context, t *target, err error, timeout time.Duration) error {
	where := fmt.Sprintf("%s (%s at %s)", t.Model, t.Name, t.provider.Name)
	status := 0
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	switch {
	case errors.As(err, &apiErr):
		status = apiErr.HTTPStatusCode
	case errors.As(err, &reqErr):
		status = reqErr.HTTPStatusCode
	}
	msg := c.redact.Replace(err.Error())
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		return fmt.Errorf("%w: %s: no answer within %s", pipeline.ErrTransient, where, timeout)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %s: %w", pipeline.ErrTransient, where, context.Canceled)
	case status == http.StatusTooManyRequests:
		return fmt.Errorf("%w: %w: %s: HTTP %d: %s", pipeline.ErrTransient, pipeline.ErrRateLimited, where, status, msg)
	case status == http.StatusRequestTimeout || status >= 500:
		return fmt.Errorf("%w: %s: HTTP %d: %s", pipeline.ErrTransient, where, status, msg)
	case status >= 400:
		return fmt.Errorf("%w: %s: HTTP %d: %s", pipeline.ErrPermanent, where, status, msg)
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return fmt.Errorf("%w: %s: network: %s", pipeline.ErrTransient, where, msg)
	}
	return fmt.Errorf("%w: %s: %s", pipeline.ErrTransient, where, msg)
}
