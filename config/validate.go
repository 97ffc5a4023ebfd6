package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/modal"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
)

// Validate names every setting that cannot work and what it expects, one
// concern at a time; the error wraps them all (errors.Join).
func (c *Config) Validate() error {
	var p problems
	c.validateProviders(&p)
	c.validateChains(&p)
	c.validateTargets(&p)
	c.validateTables(&p)
	c.validateTiers(&p)
	c.validateCounts(&p)
	c.validateDurations(&p)
	c.validateScales(&p)
	c.validateStreams(&p)
	c.validateChoices(&p)
	return p.err()
}

// problems collects what Validate finds, in the order found.
type problems []error

// bad records that the setting name cannot work, and why.
func (p *problems) bad(name, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// err is every problem found, or nil when there is none.
func (p problems) err() error {
	if len(p) > 0 {
		return fmt.Errorf("config: %w", errors.Join(p...))
	}
	return nil
}

// validateProviders checks the provider named and the settings it needs.
func (c *Config) validateProviders(p *problems) {
	switch c.Provider {
	case "auto", router.KindNebius, router.KindOpenAI, router.KindModal, router.KindSim:
	case "gemini", "anthropic":
		p.bad("LLM_PROVIDER", "%q is not supported: noesis speaks OpenAI-compatible APIs; use nebius, openai (with OPENAI_BASE_URL), sim or auto", c.Provider)
	default:
		p.bad("LLM_PROVIDER", "want auto, nebius, openai, modal or sim, got %q", c.Provider)
	}
	if c.Provider == router.KindNebius && c.NebiusAPIKey == "" {
		p.bad("NEBIUS_API_KEY", "required when LLM_PROVIDER=nebius")
	}
	if c.Provider == router.KindOpenAI && c.OpenAIBaseURL == "" {
		p.bad("OPENAI_BASE_URL", "required when LLM_PROVIDER=openai (for example http://127.0.0.1:8000/v1)")
	}
	if c.Provider == router.KindModal && c.ModalBaseURL == "" {
		p.bad("MODAL_BASE_URL", "required when LLM_PROVIDER=modal")
	}
}

// validateChains checks each tier's chain and each judge's target:
// targets that read, of providers that are set up.
func (c *Config) validateChains(p *problems) {
	chains := map[string]string{}
	for _, t := range pipeline.Tiers {
		chains[tierVar(t, "CHAIN")] = c.Tier.Of(t).Chain
	}
	for name, js := range c.JudgeSettings {
		chains["NOESIS_JUDGE_"+judgeKey(name)+"_TARGET"] = js.Target
	}
	for name, msg := range c.judgeErrors {
		p.bad(name, "%s", msg)
	}
	for name, chain := range chains {
		refs, err := parseChain(chain)
		if err != nil {
			p.bad(name, "%v", err)
		}
		for _, r := range refs {
			if msg := c.providerProblem(r.kind); msg != "" {
				p.bad(name, "%s", msg)
			}
		}
	}
}

// validateTargets checks the Modal GPU, the targets' breaker and the base URLs.
func (c *Config) validateTargets(p *problems) {
	if _, ok := modal.GPUHourPrice[c.ModalGPU]; !ok {
		p.bad("MODAL_GPU", "want one of A100-40GB, A100-80GB, H100, got %q", c.ModalGPU)
	}
	if c.TargetBreakerFailures <= 0 {
		p.bad("NOESIS_TARGET_BREAKER_FAILURES", "want a whole number above 0")
	}
	for name, u := range map[string]string{"NEBIUS_BASE_URL": c.NebiusBaseURL, "OPENAI_BASE_URL": c.OpenAIBaseURL, "MODAL_BASE_URL": c.ModalBaseURL, "NOESIS_SIM_URL": c.SimURL, "NATS_URL": c.NATSURL} {
		if u == "" {
			continue
		}
		if parsed, err := url.Parse(u); err != nil || parsed.Scheme == "" || parsed.Host == "" {
			// The value is not shown: a value that is no URL is often a key set
			// in the wrong variable (OPENAI_BASE_URL and OPENAI_API_KEY swapped).
			p.bad(name, "want an absolute URL such as %s, got %d characters that are not one (not shown: is it a key in the wrong variable?)",
				map[bool]string{true: "nats://127.0.0.1:4222", false: "http://127.0.0.1:8090/v1"}[name == "NATS_URL"], len(u))
		}
	}
}

// validateTables checks the tables written as lists (prices, limits,
// structured answers, budgets and quotas) and NATS's client certificate.
func (c *Config) validateTables(p *problems) {
	if _, err := c.PriceTable(); err != nil {
		p.bad("NOESIS_PRICES", "%v", err)
	}
	if _, err := c.LimitTable(); err != nil {
		p.bad("NOESIS_LIMITS", "%v", err)
	}
	if _, _, err := c.StructuredTable(); err != nil {
		p.bad("NOESIS_STRUCTURED", "%v", err)
	}
	if _, err := c.BudgetTable(); err != nil {
		p.bad("NOESIS_BUDGETS", "%v", err)
	} else if _, _, err := c.AgentQuotaTable(); err != nil {
		*p = append(*p, err) // it names its variable: NOESIS_AGENT_QUOTA, NOESIS_AGENT_QUOTAS or NOESIS_AGENT_BUDGET_SHARE
	}
	if (c.NATSCert == "") != (c.NATSKey == "") {
		p.bad("NATS_CERT", "NATS_CERT and NATS_KEY go together")
	}
}

// validateTiers checks the tiers to run and each tier's pool settings.
func (c *Config) validateTiers(p *problems) {
	if len(c.Tiers) == 0 {
		p.bad("NOESIS_TIERS", "name at least one of fast, reasoning, deep")
	}
	for _, t := range c.Tiers {
		if _, err := pipeline.ParseTier(t); err != nil {
			p.bad("NOESIS_TIERS", "%v", err)
		}
	}
	for _, t := range pipeline.Tiers {
		ps := c.Tier.Of(t)
		if ps.Concurrency < 0 {
			p.bad(tierVar(t, "CONCURRENCY"), "want 0 (adaptive) or more, got %d", ps.Concurrency)
		}
		if ps.MaxAckPending < 0 {
			p.bad(tierVar(t, "MAX_ACK_PENDING"), "want 0 (derived) or more, got %d", ps.MaxAckPending)
		}
		if ps.MaxAckPending > 0 && ps.MaxAckPending < ps.Concurrency {
			p.bad(tierVar(t, "MAX_ACK_PENDING"), "want at least the tier's concurrency (%d), got %d", ps.Concurrency, ps.MaxAckPending)
		}
		if ps.AckWait < 0 {
			p.bad(tierVar(t, "ACK_WAIT"), "want 0 (the stage's default) or a duration above 0, got %s", ps.AckWait)
		}
	}
}

// validateCounts checks the settings that count things, the memory budget and the judges.
func (c *Config) validateCounts(p *problems) {
	positive := map[string]int{
		"NOESIS_MAX_DELIVER": c.MaxDeliver, "NOESIS_LLM_ATTEMPTS": c.LLMAttempts, "NOESIS_MAX_TOKENS": c.MaxTokens,
		"NOESIS_NARRATIVE_MAX_TOKENS":   c.NarrativeMaxTokens,
		"NOESIS_JUDGE_BREAKER_FAILURES": c.BreakerFailures, "MODAL_GPU_COUNT": c.ModalGPUCount, "MODAL_MAX_INPUTS": c.ModalMaxInputs, "NOESIS_JUDGE_BREAKER_SUCCESSES": c.BreakerSuccesses, "NOESIS_MAX_THOUGHT_BYTES": c.MaxThoughtBytes, "NOESIS_STREAM_REPLICAS": c.StreamReplicas,
	}
	for name, v := range positive {
		if v <= 0 {
			p.bad(name, "want a whole number above 0, got %d", v)
		}
	}
	if c.CallBudget < 0 {
		p.bad("NOESIS_CALL_BUDGET", "want 0 (derived) or more, got %d", c.CallBudget)
	}
	if c.MaxConcurrency < 4 {
		p.bad("NOESIS_MAX_CONCURRENCY", "want at least 4, got %d", c.MaxConcurrency)
	}
	if _, err := c.memoryBudget(); err != nil {
		p.bad("NOESIS_MEMORY_BUDGET", "%v", err)
	}
	if _, err := c.judges(); err != nil {
		p.bad("NOESIS_JUDGES", "%v", err)
	}
}

// validateDurations checks the durations, the timeouts and the tiers' cache lifetimes.
func (c *Config) validateDurations(p *problems) {
	durations := map[string]time.Duration{
		"NOESIS_LLM_BACKOFF": c.LLMBackoff, "NOESIS_TRIBUNAL_DEADLINE": c.TribunalDeadline,
		"NOESIS_RETRY_DELAY": c.RetryDelay, "NOESIS_DRAIN_TIMEOUT": c.DrainTimeout, "NOESIS_RATE_LIMIT_PATIENCE": c.RateLimitPatience,
		"NOESIS_JUDGE_BREAKER_COOLDOWN": c.BreakerCooldown, "NOESIS_SHARED_CACHE_LEASE": c.SharedCacheLease,
		"NOESIS_TARGET_BREAKER_COOLDOWN": c.TargetBreakerCooldown, "NOESIS_LIMIT_WINDOW": c.LimitWindow, "MODAL_COLD_START_TIMEOUT": c.ModalColdStartTimeout, "MODAL_SCALEDOWN_WINDOW": c.ModalScaledownWindow, "NOESIS_DUPLICATE_WINDOW": c.DuplicateWindow, "NOESIS_STREAM_MAX_AGE": c.StreamMaxAge,
		"NOESIS_STREAM_DLQ_MAX_AGE": c.DLQMaxAge, "NOESIS_PROGRESS_EVERY": c.ProgressEvery,
	}
	for name, d := range durations {
		if d <= 0 {
			p.bad(name, "want a duration above 0, got %s", d)
		}
	}
	timeouts := map[string]time.Duration{"NOESIS_LLM_TIMEOUT": c.LLMTimeout}
	for name, js := range c.JudgeSettings {
		timeouts["NOESIS_JUDGE_"+judgeKey(name)+"_TIMEOUT"] = js.Timeout
	}
	for name, d := range timeouts {
		if d < 0 {
			p.bad(name, "want a duration of 0 (derived) or more, got %s", d)
		}
	}
	for _, t := range pipeline.Tiers {
		if d := c.cacheTTL(t); d < 0 {
			p.bad(tierVar(t, "CACHE_TTL"), "want a duration of 0 (off) or more, got %s", d)
		}
	}
	if c.AckWaitFor(pipeline.TierReasoning) <= c.TribunalDeadline/3 {
		p.bad("NOESIS_REASONING_ACK_WAIT", "want more than a third of NOESIS_TRIBUNAL_DEADLINE (%s), so heartbeats can keep a deliberation alive", c.TribunalDeadline)
	}
}

// validateScales checks the temperatures and the simulator's latency scale.
func (c *Config) validateScales(p *problems) {
	for name, f := range map[string]float64{"NOESIS_TEMPERATURE": c.Temperature, "NOESIS_NARRATIVE_TEMPERATURE": c.NarrativeTemperature} {
		if f < 0 || f > 2 {
			p.bad(name, "want a number from 0 to 2, got %g", f)
		}
	}
	if c.SimLatencyScale < 0 {
		p.bad("NOESIS_SIM_LATENCY_SCALE", "want 0 or more, got %g", c.SimLatencyScale)
	}
}

// validateStreams checks the streams' storage, sizes and ages, and the
// duplicate window against the longest redelivery span.
func (c *Config) validateStreams(p *problems) {
	if c.StreamStorage != "file" && c.StreamStorage != "memory" {
		p.bad("NOESIS_STREAM_STORAGE", "want file or memory, got %q", c.StreamStorage)
	}
	for name, size := range map[string]ByteSize{"NOESIS_STREAM_THOUGHTS_MAX_BYTES": c.ThoughtsMaxBytes, "NOESIS_STREAM_OUTPUTS_MAX_BYTES": c.OutputsMaxBytes, "NOESIS_STREAM_DLQ_MAX_BYTES": c.DLQMaxBytes,
		"NOESIS_STREAM_TRANSCRIPTS_MAX_BYTES": c.TranscriptsMaxBytes} {
		if size < minStreamBytes {
			p.bad(name, "want a size of at least %s, got %s", minStreamBytes, size)
		}
	}
	if c.AgentMaxThoughts < 0 {
		p.bad("NOESIS_AGENT_MAX_THOUGHTS", "want 0 (an eighth of the stream at the largest thoughts) or more, got %d", c.AgentMaxThoughts)
	}
	if c.AgentMaxDeadLetters < 0 {
		p.bad("NOESIS_AGENT_MAX_DEAD_LETTERS", "want 0 (an eighth of the stream at the largest letters) or more, got %d", c.AgentMaxDeadLetters)
	}
	if c.AgentMaxReviews < 0 {
		p.bad("NOESIS_AGENT_MAX_REVIEWS", "want 0 (%d) or more, got %d", review.DefaultMaxPerAgent, c.AgentMaxReviews)
	}
	if c.AgentMaxTranscripts < 0 {
		p.bad("NOESIS_AGENT_MAX_TRANSCRIPTS", "want 0 (%d) or more, got %d", consumers.DefaultMaxTranscriptsPerAgent, c.AgentMaxTranscripts)
	}
	if c.AgentMaxOutputs < 0 {
		p.bad("NOESIS_AGENT_MAX_OUTPUTS", "want 0 (%d) or more, got %d", consumers.DefaultMaxOutputsPerAgent, c.AgentMaxOutputs)
	}
	if largest := ByteSize(c.MaxThoughtBytes + consumers.ThoughtHeaderAllowance); c.ThoughtsMaxBytes < largest {
		p.bad("NOESIS_STREAM_THOUGHTS_MAX_BYTES", "want at least the largest thought, NOESIS_MAX_THOUGHT_BYTES and 8 KiB of headers (%s), got %s", largest, c.ThoughtsMaxBytes)
	}
	for name, age := range map[string]time.Duration{"NOESIS_STREAM_MAX_AGE": c.StreamMaxAge, "NOESIS_STREAM_DLQ_MAX_AGE": c.DLQMaxAge} {
		if age > 0 && age < c.DuplicateWindow {
			p.bad(name, "want at least NOESIS_DUPLICATE_WINDOW (%s), got %s: JetStream keeps message ids no longer than messages", c.DuplicateWindow, age)
		}
	}
	if window := c.DuplicateWindow; window < c.maxRedeliverySpan() {
		p.bad("NOESIS_DUPLICATE_WINDOW", "%s is shorter than the longest redelivery span (%s): a late output could be published twice", window, c.maxRedeliverySpan())
	}
}

// validateChoices checks the settings that name one of a few choices: the
// logs' level and format, and the simulator's behaviours.
func (c *Config) validateChoices(p *problems) {
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		p.bad("NOESIS_LOG_LEVEL", "want trace, debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "auto", "json", "console":
	default:
		p.bad("NOESIS_LOG_FORMAT", "want auto, json or console, got %q", c.LogFormat)
	}
	switch c.SimLengths {
	case sim.LengthsRealistic, sim.LengthsSeed:
	default:
		p.bad("NOESIS_SIM_LENGTHS", "want realistic or seed, got %q", c.SimLengths)
	}
	switch c.SimResponseFormat {
	case sim.FormatHonour, sim.FormatRefuse, sim.FormatIgnore:
	default:
		p.bad("NOESIS_SIM_RESPONSE_FORMAT", "want honour, refuse or ignore, got %q", c.SimResponseFormat)
	}
}

// minStreamBytes is the least a stream's max bytes may be: room for the
// largest dead letter (consumers.MaxLetterBytes) and more than one thought.
const minStreamBytes ByteSize = 1 << 20

// maxRedeliverySpan bounds how long after its first delivery a thought can
// still be worked on: MaxDeliver ack waits plus the nak delays between them.
func (c *Config) maxRedeliverySpan() time.Duration {
	longest := max(c.AckWaitFor(pipeline.TierFast), c.AckWaitFor(pipeline.TierReasoning), c.AckWaitFor(pipeline.TierDeep))
	var naks time.Duration
	for i := 0; i < c.MaxDeliver-1; i++ {
		naks += consumers.NakDelay(c.RetryDelay, uint64(i+1))
	}
	return time.Duration(c.MaxDeliver)*longest + naks
}
