package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/noesis-dev/noesis/modal"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/breaker"
	"github.com/noesis-dev/noesis/router"
)

// ResolvedProvider is the provider kind in effect: auto picks nebius when
// NEBIUS_API_KEY is set, else sim.
func (c *Config) ResolvedProvider() string {
	if c.Provider != "auto" {
		return c.Provider
	}
	if c.NebiusAPIKey != "" {
		return router.KindNebius
	}
	return router.KindSim
}

// Models returns the model per tier for the resolved provider.
func (c *Config) Models() map[pipeline.Tier]string {
	m := map[pipeline.Tier]string{pipeline.TierFast: c.NebiusModel, pipeline.TierReasoning: c.NebiusModelReasoning, pipeline.TierDeep: c.NebiusModelDeep}
	if c.ResolvedProvider() == router.KindOpenAI {
		for t, v := range map[pipeline.Tier]string{pipeline.TierFast: c.OpenAIModel, pipeline.TierReasoning: c.OpenAIModelReasoning, pipeline.TierDeep: c.OpenAIModelDeep} {
			if v != "" {
				m[t] = v
			}
		}
	}
	return m
}

// targetRef is one "provider:model" entry of a chain.
type targetRef struct{ kind, model string }

func (r targetRef) name() string { return r.kind + ":" + r.model }

// parseChain reads "provider:model,provider:model".
func parseChain(s string) ([]targetRef, error) {
	var out []targetRef
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		kind, model, ok := strings.Cut(item, ":")
		kind, model = strings.TrimSpace(kind), strings.TrimSpace(model)
		if !ok || model == "" {
			return nil, fmt.Errorf("want provider:model entries, got %q", item)
		}
		switch kind {
		case router.KindNebius, router.KindOpenAI, router.KindModal, router.KindSim:
		default:
			return nil, fmt.Errorf("provider %q in %q: want nebius, openai, modal or sim", kind, item)
		}
		out = append(out, targetRef{kind, model})
	}
	return out, nil
}

// providerProblem says what a provider kind is missing, if anything.
func (c *Config) providerProblem(kind string) string {
	switch kind {
	case router.KindNebius:
		if c.NebiusAPIKey == "" {
			return "the nebius provider needs NEBIUS_API_KEY"
		}
	case router.KindOpenAI:
		if c.OpenAIBaseURL == "" {
			return "the openai provider needs OPENAI_BASE_URL"
		}
	case router.KindModal:
		if c.ModalBaseURL == "" {
			return "the modal provider needs MODAL_BASE_URL"
		}
	}
	return ""
}

// chain returns a tier's chain: NOESIS_<TIER>_CHAIN, or the resolved provider's model.
func (c *Config) chain(t pipeline.Tier) []targetRef {
	raw := c.Tier.Of(t).Chain
	refs, _ := parseChain(raw)
	if len(refs) == 0 {
		model := c.Models()[t]
		if c.ResolvedProvider() == router.KindModal && c.ModalModel != "" {
			model = c.ModalModel
		}
		refs = []targetRef{{c.ResolvedProvider(), model}}
	}
	return refs
}

// UsesSim reports whether any target is the simulator.
func (c *Config) UsesSim() bool {
	for _, t := range pipeline.Tiers {
		for _, r := range c.chain(t) {
			if r.kind == router.KindSim {
				return true
			}
		}
	}
	for _, r := range c.judgeTargets() {
		if r.kind == router.KindSim {
			return true
		}
	}
	return false
}

// Router returns the router's config: one provider per kind in use, a
// target per provider:model, and each tier's chain. simURL is the
// simulator's base URL (…/v1) when the simulator is in use.
func (c *Config) Router(simURL string) router.Config {
	rc := router.Config{Tiers: map[pipeline.Tier][]string{}, Timeout: c.LLMTimeout, Attempts: c.LLMAttempts, Backoff: c.LLMBackoff,
		MaxIdleConnsPerHost: c.slots(c.Tier.Fast.Concurrency) + 3*c.slots(c.Tier.Reasoning.Concurrency) + c.slots(c.Tier.Deep.Concurrency),
		Breaker:             breaker.Config{Failures: c.TargetBreakerFailures, Cooldown: c.TargetBreakerCooldown},
		Hedge:               map[pipeline.Tier]bool{}}
	rc.AgentQuota, rc.AgentQuotas, _ = c.AgentQuotaTable() // validated
	for _, t := range pipeline.Tiers {
		rc.Hedge[t] = c.Tier.Of(t).Hedge
	}
	providers, targets := map[string]bool{}, map[string]bool{}
	prices, _ := c.PriceTable()
	limits, _ := c.LimitTable()
	structured, structuredFor, _ := c.StructuredTable()
	add := func(r targetRef) string {
		if !providers[r.kind] {
			providers[r.kind] = true
			rc.Providers = append(rc.Providers, c.provider(r.kind, simURL))
		}
		if !targets[r.name()] {
			targets[r.name()] = true
			price, lim := prices[r.model], limits[r.name()]
			tg := router.Target{Name: r.name(), Provider: r.kind, Model: r.model, PriceIn: price.In, PriceOut: price.Out,
				RPM: lim.RPM, TPM: lim.TPM, Concurrency: lim.Concurrency, Structured: structured}
			if mode, ok := structuredFor[r.name()]; ok {
				tg.Structured = mode
			}
			if r.kind == router.KindModal {
				if hourly, ok := modal.Cost(c.ModalGPU, c.ModalGPUCount, time.Hour); ok {
					tg.CallHourUSD = hourly / float64(max(c.ModalMaxInputs, 1))
				}
			}
			rc.Targets = append(rc.Targets, tg)
		}
		return r.name()
	}
	for _, t := range pipeline.Tiers {
		for _, r := range c.chain(t) {
			rc.Tiers[t] = append(rc.Tiers[t], add(r))
		}
	}
	for _, r := range c.judgeTargets() {
		add(r)
	}
	return rc
}

func (c *Config) provider(kind, simURL string) router.Provider {
	p := router.Provider{Name: kind, Kind: kind}
	switch kind {
	case router.KindNebius:
		p.BaseURL, p.APIKey = c.NebiusBaseURL, c.NebiusAPIKey
	case router.KindOpenAI:
		p.BaseURL, p.APIKey = c.OpenAIBaseURL, c.OpenAIAPIKey
	case router.KindModal:
		p.BaseURL, p.APIKey = c.ModalBaseURL, c.ModalAPIKey
		p.ColdStartTimeout, p.IdleWindow = c.ModalColdStartTimeout, c.ModalScaledownWindow
		p.Headers = modal.Headers(c.ModalKey, c.ModalSecret)
	case router.KindSim:
		p.BaseURL, p.APIKey = simURL, "sim"
	}
	return p
}

// Price is a model's price in USD per million tokens.
type Price struct{ In, Out float64 }

// PriceTable parses NOESIS_PRICES.
func (c *Config) PriceTable() (map[string]Price, error) {
	out := map[string]Price{}
	for _, item := range listItems(c.Prices) {
		model, prices, ok := strings.Cut(item, "=")
		in, outPrice, ok2 := strings.Cut(prices, "/")
		if !ok || !ok2 || strings.TrimSpace(model) == "" {
			return nil, fmt.Errorf("want model=in/out (USD per million tokens), got %q", item)
		}
		pin, err1 := strconv.ParseFloat(strings.TrimSpace(in), 64)
		pout, err2 := strconv.ParseFloat(strings.TrimSpace(outPrice), 64)
		if err1 != nil || err2 != nil || pin < 0 || pout < 0 {
			return nil, fmt.Errorf("prices in %q must be numbers of 0 or more", item)
		}
		out[strings.TrimSpace(model)] = Price{pin, pout}
	}
	return out, nil
}

// Limit is one target's limits; 0 means none.
type Limit struct{ RPM, TPM, Concurrency int }

// LimitTable parses NOESIS_LIMITS: "provider:model=rpm/tpm/concurrency,...".
func (c *Config) LimitTable() (map[string]Limit, error) {
	out := map[string]Limit{}
	for _, item := range listItems(c.Limits) {
		name, vals, ok := strings.Cut(item, "=")
		parts := strings.Split(vals, "/")
		if !ok || len(parts) != 3 || !strings.Contains(name, ":") {
			return nil, fmt.Errorf("want provider:model=rpm/tpm/concurrency, got %q", item)
		}
		var n [3]int
		for i, p := range parts {
			v, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || v < 0 {
				return nil, fmt.Errorf("limits in %q must be whole numbers of 0 or more", item)
			}
			n[i] = v
		}
		out[strings.TrimSpace(name)] = Limit{n[0], n[1], n[2]}
	}
	return out, nil
}

// StructuredTable parses NOESIS_STRUCTURED: the mode of every target (an
// item without "=", default auto), and each "provider:model=mode" item's
// for that target; a mode is auto, on or off (see router.StructuredAuto).
func (c *Config) StructuredTable() (string, map[string]string, error) {
	all, out := router.StructuredAuto, map[string]string{}
	for _, item := range listItems(c.Structured) {
		name, mode, ok := strings.Cut(item, "=")
		if !ok {
			name, mode = "", item
		}
		mode = strings.ToLower(strings.TrimSpace(mode))
		switch mode {
		case router.StructuredAuto, router.StructuredOn, router.StructuredOff:
		default:
			return "", nil, fmt.Errorf("want auto, on or off, or provider:model=auto|on|off, got %q", item)
		}
		switch name = strings.TrimSpace(name); {
		case !ok:
			all = mode
		case !strings.Contains(name, ":"):
			return "", nil, fmt.Errorf("want provider:model=auto|on|off, got %q", item)
		default:
			out[name] = mode
		}
	}
	return all, out, nil
}

// BudgetTable parses NOESIS_BUDGETS: "provider=usd,...".
func (c *Config) BudgetTable() (map[string]float64, error) {
	out := map[string]float64{}
	for _, item := range listItems(c.Budgets) {
		p, v, ok := strings.Cut(item, "=")
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if !ok || err != nil || f < 0 {
			return nil, fmt.Errorf("want provider=usd, got %q", item)
		}
		out[strings.TrimSpace(p)] = f
	}
	return out, nil
}

// AgentQuotaTable parses NOESIS_AGENT_QUOTA and NOESIS_AGENT_QUOTAS: every
// agent's quota, with its usd set to NOESIS_AGENT_BUDGET_SHARE of the
// providers' budgets when it is 0 and there are budgets, and the agents'
// own quotas (taken as written: 0 is no limit).
func (c *Config) AgentQuotaTable() (router.AgentQuota, map[string]router.AgentQuota, error) {
	parse := func(what, v string) (router.AgentQuota, error) {
		parts := strings.Split(v, "/")
		if len(parts) != 3 {
			return router.AgentQuota{}, fmt.Errorf("%s: want rpm/tpm/usd such as 60/100000/5 (0: no limit), got %q", what, v)
		}
		rpm, err1 := strconv.Atoi(strings.TrimSpace(parts[0]))
		tpm, err2 := strconv.Atoi(strings.TrimSpace(parts[1]))
		usd, err3 := strconv.ParseFloat(strings.TrimSpace(parts[2]), 64)
		if err1 != nil || err2 != nil || err3 != nil || rpm < 0 || tpm < 0 || usd < 0 || math.IsNaN(usd) || math.IsInf(usd, 0) {
			return router.AgentQuota{}, fmt.Errorf("%s: want rpm/tpm/usd, numbers of 0 or more, got %q", what, v)
		}
		return router.AgentQuota{RPM: rpm, TPM: tpm, USD: usd}, nil
	}
	every, err := parse("NOESIS_AGENT_QUOTA", c.AgentQuota)
	if err != nil {
		return every, nil, err
	}
	if c.AgentBudgetShare < 0 || c.AgentBudgetShare > 1 || math.IsNaN(c.AgentBudgetShare) {
		return every, nil, fmt.Errorf("NOESIS_AGENT_BUDGET_SHARE: want 0 to 1, got %v", c.AgentBudgetShare)
	}
	if every.USD == 0 && c.AgentBudgetShare > 0 {
		budgets, err := c.BudgetTable()
		if err != nil {
			return every, nil, err
		}
		total := 0.0
		for _, b := range budgets {
			total += b
		}
		every.USD = c.AgentBudgetShare * total
	}
	own := map[string]router.AgentQuota{}
	for _, item := range listItems(c.AgentQuotas) {
		agent, v, ok := strings.Cut(item, "=")
		agent = strings.TrimSpace(agent)
		if !ok || !pipeline.ValidToken(agent) {
			return every, nil, fmt.Errorf("NOESIS_AGENT_QUOTAS: want agent=rpm/tpm/usd, got %q", item)
		}
		if own[agent], err = parse("NOESIS_AGENT_QUOTAS", v); err != nil {
			return every, nil, err
		}
	}
	return every, own, nil
}

// SharedLimits reports whether any limit, budget or agent quota needs the shared counters.
func (c *Config) SharedLimits() bool {
	if every, own, err := c.AgentQuotaTable(); err == nil {
		if every.Active() {
			return true
		}
		for _, q := range own {
			if q.Active() {
				return true
			}
		}
	}
	limits, _ := c.LimitTable()
	for _, l := range limits {
		if l.RPM > 0 || l.TPM > 0 {
			return true
		}
	}
	budgets, _ := c.BudgetTable()
	return len(budgets) > 0
}

// slots is the most thoughts a pool may hold: its fixed concurrency, or the
// adaptive limit's ceiling. The HTTP client keeps that many idle connections
// per host for the calls they make (an HTTP/1.1 server such as vLLM takes one
// connection a call), so the connections are reused instead of redialled.
func (c *Config) slots(concurrency int) int {
	if concurrency > 0 {
		return concurrency
	}
	return c.MaxConcurrency
}

// listItems splits a comma-separated setting into its items, trimmed, empty
// ones left out.
func listItems(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
