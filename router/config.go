package router

import (
	"context"
	"fmt"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/breaker"
)

// The provider kinds the router can talk to.
const (
	KindNebius = "nebius" // Nebius Token Factory
	KindOpenAI = "openai" // any OpenAI-compatible endpoint (vLLM, Ollama, OpenAI)
	KindModal  = "modal"  // a vLLM server deployed on Modal.com (see modal/)
	KindSim    = "sim"    // the noesis simulator
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
	// (with Config.Quotas); Concurrency limits this process's calls in flight. 0: no limit.
	RPM, TPM, Concurrency int
	// Structured says whether a request's schema (pipeline.Request.Schema)
	// goes to this target as response_format json_schema: StructuredAuto
	// (the default, also ""), StructuredOn or StructuredOff.
	Structured string
}

// Quotas keeps the limits that hold across worker processes: each target's
// requests and tokens per window, each provider's budget, each agent's
// quota (shared.Limits keeps them in NATS). Implementations must be
// safe for concurrent use.
type Quotas interface {
	// Take waits until the target may make one more request.
	Take(ctx context.Context, target string, rpm, tpm int) error
	// Spend records a call's tokens and estimated cost.
	Spend(ctx context.Context, target, provider string, tokens int, costUSD float64)
	// BudgetSpent reports whether the provider's budget is spent.
	BudgetSpent(provider string) bool
	// Admit lets one more request of agent's through under its quota (rpm
	// and tpm per window, usd per month; 0: none), counting reserveUSD (the
	// call's most expected cost) against the month's usd at once, so calls
	// in flight together cannot pass it; or returns why not: an error
	// wrapping pipeline.ErrQuota (in a RetryAfterError for requests or tokens
	// past this window's), or the counters' error.
	Admit(ctx context.Context, agent string, rpm, tpm int, usd, reserveUSD float64) error
	// SettleAgent records an admitted call of agent's: its tokens, and its
	// cost in place of the reservedUSD Admit counted (0 when it failed).
	SettleAgent(ctx context.Context, agent string, tokens int, costUSD, reservedUSD float64)
}

// AgentQuota is what one agent may use, summed across every worker: model
// requests and tokens per limit window, and USD per calendar month (UTC).
// 0: no limit.
type AgentQuota struct {
	RPM, TPM int
	USD      float64
}

// Active reports whether q limits anything.
func (q AgentQuota) Active() bool { return q.RPM > 0 || q.TPM > 0 || q.USD > 0 }

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
	Breaker breaker.Config
	// OnBreakerChange, when set, is told of every target breaker's change,
	// with the failure that opened it (see breaker.New).
	OnBreakerChange func(target string, from, to breaker.State, cause error)
	// Hedge, per tier: when the first target has not answered within its
	// observed p95 latency (over its last 128 answers, once it has 20), send
	// the same request to the next target and take whichever answers first,
	// cancelling the other. Off by default.
	Hedge map[pipeline.Tier]bool
	// AgentQuota is every agent's quota, AgentQuotas an agent's own where it
	// has one (with Quotas; docs/security.md, "Quotas per agent").
	AgentQuota  AgentQuota
	AgentQuotas map[string]AgentQuota
	// Quotas, when set, enforces the limits and budgets shared by every
	// worker process; nil: only this process's own (Concurrency, pacing).
	Quotas Quotas
	// Observer, when set, is told of every upstream call.
	Observer CallObserver
}

// withDefaults gives the zero settings their defaults.
func (c Config) withDefaults() Config {
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.MaxIdleConnsPerHost <= 0 {
		c.MaxIdleConnsPerHost = 64
	}
	return c
}

// quotaFor is agent's quota: its own, or every agent's.
func (c Config) quotaFor(agent string) AgentQuota {
	if q, ok := c.AgentQuotas[agent]; ok {
		return q
	}
	return c.AgentQuota
}

// quotas reports whether any agent has a quota.
func (c Config) quotas() bool {
	if c.AgentQuota.Active() {
		return true
	}
	for _, q := range c.AgentQuotas {
		if q.Active() {
			return true
		}
	}
	return false
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
		switch t.Structured {
		case "", StructuredAuto, StructuredOn, StructuredOff:
		default:
			return fmt.Errorf("router: target %q has structured %q (want auto, on or off)", t.Name, t.Structured)
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

func withTargetDefaults(b breaker.Config) breaker.Config {
	if b.Failures <= 0 {
		b.Failures = 5
	}
	if b.Cooldown <= 0 {
		b.Cooldown = 30 * time.Second
	}
	return b
}
