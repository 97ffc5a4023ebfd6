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
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	openai "github.com/sashabaranov/go-openai"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/breaker"
	"github.com/noesis-dev/noesis/pipeline/fair"
)

// Observer is told of every upstream call, for metrics. Implementations must
// be safe for concurrent use and must not block.
type Observer interface {
	CallStarted(tier pipeline.Tier, t Target)
	// costUSD is the call's estimated price (per-token prices, or GPU time
	// for CallHourUSD targets); 0 for a failed call.
	CallFinished(tier pipeline.Tier, t Target, d time.Duration, usage pipeline.Usage, costUSD float64, err error)
}

// Chain calls a tier's targets in order until one answers. Safe for concurrent use.
type Chain struct {
	cfg     Config
	targets map[string]*target
	tiers   map[pipeline.Tier][]*target
	cache   *Cache
	log     zerolog.Logger
	redact  *strings.Replacer
	obs     Observer
	limiter Limiter
	http    *http.Client // HTTP/1.1, or HTTP/2 where TLS offers it
	h2c     *http.Client // HTTP/2 without TLS: the simulator
}

var _ pipeline.Completer = (*Chain)(nil)

// New builds a Chain over one shared HTTP client. cache may be nil (no caching).
func New(cfg Config, cache *Cache, log zerolog.Logger) (*Chain, error) {
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
		be := &openAIBackend{client: openai.NewClientWithConfig(oc), model: t.Model, target: t.Name,
			where: fmt.Sprintf("%s (%s at %s)", t.Model, t.Name, p.Name), redact: c.redact, structured: newStructuredUse(t, log, c.redact)}
		var onChange func(from, to breaker.State, cause error)
		if fn := cfg.OnBreakerChange; fn != nil {
			name := t.Name
			onChange = func(from, to breaker.State, cause error) { fn(name, from, to, cause) }
		}
		tg := &target{Target: t, provider: p, backend: be, breaker: breaker.New(withTargetDefaults(cfg.Breaker), onChange)}
		if t.Concurrency > 0 {
			tg.slots = fair.NewSlots(t.Concurrency)
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

// PacedRates returns the targets paced to a quota learned from their 429s,
// with the calls per second each is paced to.
func (c *Chain) PacedRates() map[string]float64 {
	out := map[string]float64{}
	for name, t := range c.targets {
		if r := t.pace.Rate(); r > 0 {
			out[name] = r
		}
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
		w, ok := t.backend.(warmer)
		if t.provider.ColdStartTimeout <= 0 || !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx, cancel := context.WithTimeout(ctx, t.provider.ColdStartTimeout)
			defer cancel()
			started := time.Now()
			if err := w.WarmUp(wctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("warm up %s: %w", t.Name, err))
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
//
// A request the provider refuses for what it holds (pipeline.ErrRequestRefused)
// is not the target's fault, so it is not retried as if the target were sick:
// a content-policy or malformed-request refusal ends the chain at once with
// the provider's words; a context-length refusal goes on to the chain's next
// targets that serve another model or sit at another provider (a fallback
// with a bigger context may take it), each asked once, skipping the same
// model at the same provider. When every target asked refused, the error is
// permanent; when one could not be asked (open breaker, spent budget), it is
// transient, since that target may fit the request later.
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
	tooLong := map[modelAt]bool{} // the models that refused the request as past their context
	if c.cfg.Hedge[req.Tier] && len(open) >= 2 {
		if d, ok := open[0].p95(); ok {
			resp, err := c.hedge(ctx, req, open[0], open[1], d)
			if err == nil {
				resp.Fallback = resp.Target != chain[0].Name
				return resp, nil
			}
			if final(err) {
				return pipeline.Response{}, err
			}
			c.noteTooLong(tooLong, err)
			errs = append(errs, err)
			open = open[2:]
		}
	}
	for i, t := range open {
		if tooLong[t.modelAt()] {
			continue // the same model at the same provider: the same context
		}
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
		if final(err) {
			return pipeline.Response{}, err // the request's fault: no other target would take it
		}
		c.noteTooLong(tooLong, err)
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
	key := CacheKey(t.provider.Name, t.Model, req)
	resp, err := c.cache.Do(ctx, req.Tier, key, func(ctx context.Context) (pipeline.Response, error) {
		return c.tryTarget(ctx, t, req)
	})
	if err == nil {
		resp.Target = t.Name
	}
	return resp, err
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
