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

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/breaker"
	"github.com/noesis-dev/noesis/pipeline/fair"
	"github.com/noesis-dev/noesis/pipeline/retry"
)

// CallObserver is told of every upstream model call, for metrics.
// Implementations must be safe for concurrent use and must not block.
type CallObserver interface {
	// CallStarted is told of a call on its way to t.
	CallStarted(tier pipeline.Tier, t Target)
	// CallFinished is told of its end. costUSD is the call's estimated price
	// (per-token prices, or GPU time for CallHourUSD targets); 0 for a
	// failed call.
	CallFinished(tier pipeline.Tier, t Target, d time.Duration, usage pipeline.Usage, costUSD float64, err error)
}

// Router answers a request with its tier's chain of model targets, through
// the answer cache (see the package doc for one call's way). Safe for
// concurrent use; Close it once no call is in flight.
type Router struct {
	*settings
	targets map[string]*target
	tiers   map[pipeline.Tier][]*target
	cache   *Cache
	http    *http.Client // HTTP/1.1, or HTTP/2 where TLS offers it
	h2c     *http.Client // HTTP/2 without TLS: the simulator
	// calls owns the goroutines a call leaves behind: a hedge's losing
	// call, cancelled, on its way out. Close waits for them.
	calls     sync.WaitGroup
	closeOnce sync.Once
}

var _ pipeline.Completer = (*Router)(nil)

// New builds a Router over one shared HTTP client. cache may be nil (no
// caching). It fails when cfg does not validate.
func New(cfg Config, cache *Cache, log zerolog.Logger) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	policy := retry.Exponential(cfg.Backoff, time.Hour)
	policy.MaxTries, policy.Hint, policy.WithinDeadline = cfg.Attempts, pipeline.RetryAfter, true
	r := &Router{
		settings: &settings{cfg: cfg, quotas: cfg.Quotas, observer: cfg.Observer, log: log, retry: policy},
		targets:  map[string]*target{}, tiers: map[pipeline.Tier][]*target{}, cache: cache,
		http: NewHTTPClient(cfg.MaxIdleConnsPerHost, false), h2c: NewHTTPClient(cfg.MaxIdleConnsPerHost, true),
	}
	providers := map[string]Provider{}
	for _, p := range cfg.Providers {
		providers[p.Name] = p
	}
	redact := redactor(cfg.Providers)
	for _, t := range cfg.Targets {
		r.targets[t.Name] = r.newTarget(t, providers[t.Provider], redact)
	}
	for tier, names := range cfg.Tiers {
		for _, n := range names {
			r.tiers[tier] = append(r.tiers[tier], r.targets[n])
		}
	}
	return r, nil
}

// newTarget builds the router's target t at provider p, with its backend.
func (r *Router) newTarget(t Target, p Provider, redact *strings.Replacer) *target {
	client := r.http
	if p.Kind == KindSim {
		client = r.h2c
	}
	var onChange func(from, to breaker.State, cause error)
	if fn := r.cfg.OnBreakerChange; fn != nil {
		onChange = func(from, to breaker.State, cause error) { fn(t.Name, from, to, cause) }
	}
	tg := &target{Target: t, settings: r.settings, provider: p, backend: newOpenAIBackend(p, t, client, redact, r.log),
		breaker: breaker.New(withTargetDefaults(r.cfg.Breaker), onChange)}
	if t.Concurrency > 0 {
		tg.slots = fair.NewSlots(t.Concurrency)
	}
	return tg
}

// redactor removes every configured secret (API keys, header values) from a message.
func redactor(providers []Provider) *strings.Replacer {
	var secrets []string
	for _, p := range providers {
		if len(p.APIKey) >= 4 {
			secrets = append(secrets, p.APIKey, "[REDACTED]")
		}
		for _, v := range p.Headers {
			if len(v) >= 4 {
				secrets = append(secrets, v, "[REDACTED]")
			}
		}
	}
	return strings.NewReplacer(secrets...)
}

// Close waits for the calls a hedge left behind, then drops the idle
// connections of the shared clients. Call it once no Complete is in
// flight; safe to call twice.
func (r *Router) Close() {
	r.closeOnce.Do(func() {
		r.calls.Wait()
		r.http.CloseIdleConnections()
		r.h2c.CloseIdleConnections()
	})
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
func (r *Router) Complete(ctx context.Context, req pipeline.Request) (pipeline.Response, error) {
	return r.drive(r.course(ctx, &req))
}

// course starts req's course: its chain, the targets that may be asked,
// and the hedge between the first two, when the tier hedges. A course
// ended here (no chain, or the hedge's answer) has its answer already.
//
//go:noinline
func (r *Router) course(ctx context.Context, req *pipeline.Request) *course {
	c := &course{r: r, ctx: ctx, req: *req}
	chain, err := r.chain(c.req)
	if err != nil {
		c.err, c.done = err, true
		return c
	}
	c.first = chain[0]
	c.open, c.errs = r.open(chain)
	if r.cfg.Hedge[c.req.Tier] && len(c.open) >= 2 {
		if d, ok := c.open[0].lat.p95(); ok {
			resp, done, err := r.hedgeFirst(ctx, &c.req, chain[0], c.open, d)
			if done {
				c.resp, c.err, c.done = resp, err, true
				return c
			}
			c.tooLong = r.noteTooLong(c.tooLong, err)
			c.errs = append(c.errs, err)
			c.open = c.open[2:]
		}
	}
	return c
}

// hedgeFirst asks the chain's first two open targets through hedge,
// and reports whether that ends Complete (done): with the answer, or a
// refusal no other target would take. Out of Complete, its frame is not
// on the stack of every call in flight.
//
//go:noinline
func (r *Router) hedgeFirst(ctx context.Context, req *pipeline.Request, first *target, open []*target, after time.Duration) (pipeline.Response, bool, error) {
	resp, err := r.hedge(ctx, *req, open[0], open[1], after)
	if err == nil {
		resp.Fallback = resp.Target != first.Name
		return resp, true, nil
	}
	return pipeline.Response{}, final(err), err
}

// pausedErr says that t is paused by a 429 while the chain goes on.
//
//go:noinline
func (t *target) pausedErr() error {
	return fmt.Errorf("%w: %w: %s is rate limited", pipeline.ErrTransient, pipeline.ErrRateLimited, t.Name)
}

// Peek implements pipeline.Peeker: the answer Complete would give req from
// this process's cache, from the first target of req's chain, without
// asking or waiting for anything. It says nothing is held when Complete
// would go to another target: the first is not open (its breaker open, its
// provider's budget spent: Router.open), or a 429 paused it with another to
// follow. It never counts toward a breaker or a quota, as a cached answer
// in Complete does not.
func (r *Router) Peek(_ context.Context, req pipeline.Request) (pipeline.Response, bool) {
	chain, err := r.chain(req)
	if err != nil {
		return pipeline.Response{}, false
	}
	open, _ := r.open(chain[:1]) // the first target, as Complete would take it
	if len(open) == 0 || len(chain) > 1 && open[0].rateLimited() {
		return pipeline.Response{}, false // Complete would ask the next target
	}
	t := open[0]
	resp, ok := r.cache.Peek(req.Tier, CacheKey(t.provider.Name, t.Model, req))
	if ok {
		resp.Target, resp.Fallback = t.Name, false
	}
	return resp, ok
}

// chain is the targets req goes to, in order: its tier's, req.Target first
// when set, the batch targets first for a batch request.
func (r *Router) chain(req pipeline.Request) ([]*target, error) {
	chain := r.tiers[req.Tier]
	if req.Target != "" {
		t, ok := r.targets[req.Target]
		if !ok {
			return nil, fmt.Errorf("%w: unknown model target %q", pipeline.ErrPermanent, req.Target)
		}
		chain = append([]*target{t}, without(chain, t)...)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: no model target for tier %s", pipeline.ErrPermanent, req.Tier)
	}
	if req.Priority == "batch" && req.Target == "" {
		chain = batchFirst(chain)
	}
	return chain, nil
}

// open returns the targets of chain that may be asked, in order, and why
// each of the others may not: its provider's budget is spent, or its
// breaker is open.
func (r *Router) open(chain []*target) (open []*target, errs []error) {
	for _, t := range chain {
		if r.quotas != nil && r.quotas.BudgetSpent(t.provider.Name) {
			errs = append(errs, fmt.Errorf("%w: %s: provider %s has spent its budget", pipeline.ErrTransient, t.Name, t.provider.Name))
			continue
		}
		if !t.breaker.Allow() {
			errs = append(errs, &pipeline.RetryAfterError{After: t.breaker.RetryIn(),
				Err: fmt.Errorf("%w: %w: %s (%s at %s) after repeated failures", pipeline.ErrTransient, pipeline.ErrCircuitOpen, t.Model, t.Name, t.provider.Name)})
			continue
		}
		open = append(open, t)
	}
	return open, errs
}

// viaCache answers req from t, through the cache, as a course of its own
// (a hedge's two calls are two).
func (r *Router) viaCache(ctx context.Context, t *target, req *pipeline.Request) (pipeline.Response, error) {
	return r.drive(&course{r: r, ctx: ctx, req: *req, open: []*target{t}, single: true})
}

// noteTooLong returns tooLong with the models that refused err's request
// as past their context.
func (r *Router) noteTooLong(tooLong []modelAt, err error) []modelAt {
	for _, ce := range callErrors(err) {
		if t := r.targets[ce.Target]; t != nil && ce.Refusal == RefusalContextLength {
			tooLong = append(tooLong, t.modelAt())
		}
	}
	return tooLong
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

func without(list []*target, t *target) []*target {
	out := make([]*target, 0, len(list))
	for _, x := range list {
		if x != t {
			out = append(out, x)
		}
	}
	return out
}

// WarmUp calls each cold-start target once (GET /models, within its cold-start
// timeout), so the first thought does not wait for a container to start. It
// returns when every warm-up has ended, and reports the failures.
func (r *Router) WarmUp(ctx context.Context) error {
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range r.targets {
		w, ok := t.backend.(warmer)
		if t.provider.ColdStartTimeout <= 0 || !ok {
			continue
		}
		wg.Go(func() {
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
			r.log.Info().Str("target", t.Name).Dur("took", time.Since(started)).Msg("target warmed up")
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Targets returns the model targets of a tier, in order.
func (r *Router) Targets(t pipeline.Tier) []Target {
	var out []Target
	for _, x := range r.tiers[t] {
		out = append(out, x.Target)
	}
	return out
}

// BreakerStates returns each target's circuit-breaker state.
func (r *Router) BreakerStates() map[string]string {
	out := make(map[string]string, len(r.targets))
	for name, t := range r.targets {
		out[name] = string(t.breaker.State())
	}
	return out
}

// PacedRates returns the targets paced to a quota learned from their 429s,
// with the calls per second each is paced to.
func (r *Router) PacedRates() map[string]float64 {
	out := map[string]float64{}
	for name, t := range r.targets {
		if rate := t.pace.Rate(); rate > 0 {
			out[name] = rate
		}
	}
	return out
}

// Structured returns each target's use of structured answers: auto, on,
// off, or refused (an auto target that refused them, asked in text since).
func (r *Router) Structured() map[string]string {
	out := make(map[string]string, len(r.targets))
	for name, t := range r.targets {
		if be, ok := t.backend.(*openAIBackend); ok && be.structured != nil {
			out[name] = be.structured.state()
		}
	}
	return out
}
