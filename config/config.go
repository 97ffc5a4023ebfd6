// Package config reads noesis's settings from the environment, an optional
// .env file and command-line flags (flags win, then the environment, then
// .env, then the defaults), validates them, and hands each component its own
// Config. It has no behaviour of its own.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/modal"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
)

// Config is every setting, named by its environment variable.
type Config struct {
	// NATS
	NATSURL    string `env:"NATS_URL"`                                       // empty: start an embedded server
	NATSListen string `env:"NOESIS_NATS_LISTEN" envDefault:"127.0.0.1:4222"` // the embedded server's address
	DataDir    string `env:"NOESIS_DATA_DIR" envDefault:"./data"`            // the embedded server's JetStream storage

	// NATS credentials and TLS, under natscli's names.
	NATSUser     string `env:"NATS_USER"`
	NATSPassword string `env:"NATS_PASSWORD"`
	NATSToken    string `env:"NATS_TOKEN"`
	NATSCreds    string `env:"NATS_CREDS"` // a .creds file (JWT + NKey seed)
	NATSNKey     string `env:"NATS_NKEY"`  // a file holding an NKey seed
	NATSCA       string `env:"NATS_CA"`    // CA certificate(s) to trust
	NATSCert     string `env:"NATS_CERT"`  // client certificate
	NATSKey      string `env:"NATS_KEY"`   // client key

	// AgentID is the agent `noesis publish` and `noesis judge` act as when
	// --agent is not given (an agent's machine sets it once, with NATS_NKEY).
	AgentID string `env:"NOESIS_AGENT"`

	// Which pools this process runs.
	Tiers []string `env:"NOESIS_TIERS" envDefault:"fast,reasoning,deep" envSeparator:","`

	// Providers
	Provider             string `env:"LLM_PROVIDER" envDefault:"auto"`
	NebiusAPIKey         string `env:"NEBIUS_API_KEY"`
	NebiusBaseURL        string `env:"NEBIUS_BASE_URL" envDefault:"https://api.tokenfactory.nebius.com/v1/"`
	NebiusModel          string `env:"NEBIUS_MODEL" envDefault:"meta-llama/Llama-3.3-70B-Instruct-fast"`
	NebiusModelReasoning string `env:"NEBIUS_MODEL_REASONING" envDefault:"deepseek-ai/DeepSeek-R1-0528-fast"`
	NebiusModelDeep      string `env:"NEBIUS_MODEL_DEEP" envDefault:"Qwen/Qwen3-235B-A22B-Thinking-2507"`
	OpenAIBaseURL        string `env:"OPENAI_BASE_URL"`
	OpenAIAPIKey         string `env:"OPENAI_API_KEY"`
	OpenAIModel          string `env:"OPENAI_MODEL"`           // default: NEBIUS_MODEL
	OpenAIModelReasoning string `env:"OPENAI_MODEL_REASONING"` // default: NEBIUS_MODEL_REASONING
	OpenAIModelDeep      string `env:"OPENAI_MODEL_DEEP"`      // default: NEBIUS_MODEL_DEEP

	// Modal: a vLLM server deployed with modal/vllm_app.py.
	ModalBaseURL          string        `env:"MODAL_BASE_URL"` // https://<workspace>--noesis-vllm-serve.modal.run/v1
	ModalAPIKey           string        `env:"MODAL_API_KEY"`  // the vLLM server's --api-key, if set
	ModalKey              string        `env:"MODAL_KEY"`      // proxy auth token id (Modal-Key), if the app requires proxy auth
	ModalSecret           string        `env:"MODAL_SECRET"`   // proxy auth token secret (Modal-Secret)
	ModalModel            string        `env:"MODAL_MODEL"`    // default: NEBIUS_MODEL
	ModalColdStartTimeout time.Duration `env:"MODAL_COLD_START_TIMEOUT" envDefault:"90s"`
	ModalScaledownWindow  time.Duration `env:"MODAL_SCALEDOWN_WINDOW" envDefault:"5m"`
	ModalWarmup           bool          `env:"MODAL_WARMUP" envDefault:"false"`
	// For cost estimates of Modal calls: the app's GPUs and how many requests a
	// container serves at once (vllm_app.py's NOESIS_MAX_INPUTS).
	ModalGPU       string `env:"MODAL_GPU" envDefault:"H100"`
	ModalGPUCount  int    `env:"MODAL_GPU_COUNT" envDefault:"1"`
	ModalMaxInputs int    `env:"MODAL_MAX_INPUTS" envDefault:"64"`

	// Limits per target, shared by every worker (rpm, tpm) or per process
	// (concurrency): "provider:model=rpm/tpm/concurrency,..." with 0 for none.
	Limits      string        `env:"NOESIS_LIMITS"`
	LimitWindow time.Duration `env:"NOESIS_LIMIT_WINDOW" envDefault:"1m"`
	// Structured answers per target (router.Target.Structured): auto, on or
	// off for every target, then "provider:model=mode" for one: "auto,sim:m=off".
	Structured string `env:"NOESIS_STRUCTURED" envDefault:"auto"`
	// Monthly budgets per provider in USD, summed across workers: "nebius=50,modal=270".
	Budgets string `env:"NOESIS_BUDGETS"`
	// Quotas per agent, summed across workers: every agent's
	// "rpm/tpm/usd" (requests and tokens per NOESIS_LIMIT_WINDOW, USD per
	// month; 0: none), an agent's own "agent=rpm/tpm/usd,...", and the share
	// of the providers' monthly budgets one agent may spend when every
	// agent's usd is 0.
	AgentQuota       string  `env:"NOESIS_AGENT_QUOTA" envDefault:"0/0/0"`
	AgentQuotas      string  `env:"NOESIS_AGENT_QUOTAS"`
	AgentBudgetShare float64 `env:"NOESIS_AGENT_BUDGET_SHARE" envDefault:"0.5"`
	// A model target's circuit breaker.
	TargetBreakerFailures int           `env:"NOESIS_TARGET_BREAKER_FAILURES" envDefault:"5"`
	TargetBreakerCooldown time.Duration `env:"NOESIS_TARGET_BREAKER_COOLDOWN" envDefault:"30s"`

	// Simulator
	SimURL          string  `env:"NOESIS_SIM_URL"`                                // empty: run the simulator in-process
	SimListen       string  `env:"NOESIS_SIM_LISTEN" envDefault:"127.0.0.1:8090"` // `noesis sim`'s address
	SimLatencyScale float64 `env:"NOESIS_SIM_LATENCY_SCALE" envDefault:"1"`       // 1 = the seed's latencies, 0 = none
	// SimLengths: realistic (reasoning models think ~700 tokens, log-normal,
	// before answering) or seed (every call takes the seed's capped latency).
	SimLengths string `env:"NOESIS_SIM_LENGTHS" envDefault:"realistic"`
	// SimResponseFormat: what the simulator does with a response_format
	// json_schema: honour (as vLLM with a reasoning parser), refuse (400) or ignore.
	SimResponseFormat string `env:"NOESIS_SIM_RESPONSE_FORMAT" envDefault:"honour"`

	// Model calls
	// LLMTimeout bounds one model call; 0 (the default) sizes each call's
	// timeout by its token budget and the target's measured speed (see
	// router.Config.Timeout). The origin used 120s.
	LLMTimeout  time.Duration `env:"NOESIS_LLM_TIMEOUT" envDefault:"0s"`
	LLMAttempts int           `env:"NOESIS_LLM_ATTEMPTS" envDefault:"3"`
	LLMBackoff  time.Duration `env:"NOESIS_LLM_BACKOFF" envDefault:"1s"`
	Temperature float64       `env:"NOESIS_TEMPERATURE" envDefault:"0.7"`
	MaxTokens   int           `env:"NOESIS_MAX_TOKENS" envDefault:"8192"`

	NarrativeTemperature float64 `env:"NOESIS_NARRATIVE_TEMPERATURE" envDefault:"0.3"`
	NarrativeMaxTokens   int     `env:"NOESIS_NARRATIVE_MAX_TOKENS" envDefault:"512"`

	// Tribunal
	// TribunalDeadline bounds a whole deliberation: long enough for a judge to
	// think through the whole NOESIS_MAX_TOKENS budget at the seed's 77.7 tok/s
	// (105 s) and wait out a rate limit (docs/judges.md). The origin used 15s.
	TribunalDeadline time.Duration `env:"NOESIS_TRIBUNAL_DEADLINE" envDefault:"150s"`
	// Judges, as a JSON list, when the tribunal is not the origin's three:
	// [{"name":"VERITAS","pillar":"truth","weight":0.4,"charge":"Is the account
	// truthful?"}, ...], with optional "timeout" ("3s") and "target"
	// ("provider:model"). Empty: VERITAS, SOPHIA and DIKĒ with the origin's
	// weights.
	Judges string `env:"NOESIS_JUDGES"`
	// JudgeSettings are the judges' own settings by name, from
	// NOESIS_JUDGE_<NAME>_TIMEOUT and _TARGET (see JudgeSettings).
	JudgeSettings map[string]JudgeSettings `env:"-"`
	// judgeErrors are those variables that do not read, by variable.
	judgeErrors map[string]string
	// renamedUsed are the variables of earlier releases that were set.
	renamedUsed      []string
	BreakerFailures  int           `env:"NOESIS_JUDGE_BREAKER_FAILURES" envDefault:"3"`
	BreakerCooldown  time.Duration `env:"NOESIS_JUDGE_BREAKER_COOLDOWN" envDefault:"60s"`
	BreakerSuccesses int           `env:"NOESIS_JUDGE_BREAKER_SUCCESSES" envDefault:"2"`

	// Cache
	CacheMaxBytes    int64         `env:"NOESIS_CACHE_MAX_BYTES" envDefault:"67108864"`
	SharedCache      bool          `env:"NOESIS_SHARED_CACHE" envDefault:"true"`
	SharedCacheLease time.Duration `env:"NOESIS_SHARED_CACHE_LEASE" envDefault:"60s"`

	// Tier: each tier's settings under NOESIS_<TIER>_ (TierSettings); then
	// the limits every adaptive pool shares.
	Tier            TierTable
	MaxConcurrency  int           `env:"NOESIS_MAX_CONCURRENCY" envDefault:"4096"`
	MemoryBudget    string        `env:"NOESIS_MEMORY_BUDGET"` // e.g. 256MiB; empty: GOMEMLIMIT's, if set
	MaxDeliver      int           `env:"NOESIS_MAX_DELIVER" envDefault:"5"`
	RetryDelay      time.Duration `env:"NOESIS_RETRY_DELAY" envDefault:"1s"`
	MaxThoughtBytes int           `env:"NOESIS_MAX_THOUGHT_BYTES" envDefault:"65536"`
	DrainTimeout    time.Duration `env:"NOESIS_DRAIN_TIMEOUT" envDefault:"30s"`
	// FairShare serves waiting thoughts and model calls by priority, then in
	// turn between agents; false serves them first come, first served (to
	// measure what fairness costs: noesis bench fair).
	FairShare bool `env:"NOESIS_FAIR_SHARE" envDefault:"true"`
	// CallBudget bounds the upstream calls of one delivery; 0 (the default):
	// the judges times NOESIS_LLM_ATTEMPTS, plus one, and at least 10.
	CallBudget        int           `env:"NOESIS_CALL_BUDGET" envDefault:"0"`
	RateLimitPatience time.Duration `env:"NOESIS_RATE_LIMIT_PATIENCE" envDefault:"5m"`
	DuplicateWindow   time.Duration `env:"NOESIS_DUPLICATE_WINDOW" envDefault:"15m"`
	StreamMaxAge      time.Duration `env:"NOESIS_STREAM_MAX_AGE" envDefault:"24h"`
	StreamReplicas    int           `env:"NOESIS_STREAM_REPLICAS" envDefault:"1"`
	StreamStorage     string        `env:"NOESIS_STREAM_STORAGE" envDefault:"file"`
	// The streams' bounds; what each does when full is in docs/operations.md.
	// The defaults are consumers.Default*MaxBytes and DefaultDLQMaxAge.
	ThoughtsMaxBytes ByteSize `env:"NOESIS_STREAM_THOUGHTS_MAX_BYTES" envDefault:"1GiB"`
	// AgentMaxThoughts bounds one agent's thoughts held in NOESIS_THOUGHTS.
	AgentMaxThoughts int64         `env:"NOESIS_AGENT_MAX_THOUGHTS" envDefault:"100000"`
	OutputsMaxBytes  ByteSize      `env:"NOESIS_STREAM_OUTPUTS_MAX_BYTES" envDefault:"1GiB"`
	DLQMaxBytes      ByteSize      `env:"NOESIS_STREAM_DLQ_MAX_BYTES" envDefault:"256MiB"`
	DLQMaxAge        time.Duration `env:"NOESIS_STREAM_DLQ_MAX_AGE" envDefault:"168h"`

	// TranscriptsMaxBytes bounds NOESIS_TRANSCRIPTS, the verdicts'
	// transcripts (kept NOESIS_STREAM_MAX_AGE; the oldest go first when full).
	TranscriptsMaxBytes ByteSize `env:"NOESIS_STREAM_TRANSCRIPTS_MAX_BYTES" envDefault:"512MiB"`
	// VerdictThinking keeps each judge's thinking (at most 4 KiB) in the
	// verdict too; it is always in the transcript (noesis.transcripts.<agent>).
	VerdictThinking bool `env:"NOESIS_VERDICT_THINKING" envDefault:"false"`
	// ProgressEvery is how often serve logs, at info, a thought whose stage
	// is still at work ("still deliberating", judges answered n/3).
	ProgressEvery time.Duration `env:"NOESIS_PROGRESS_EVERY" envDefault:"10s"`

	// Prices per model, in USD per million tokens in/out, for cost estimates:
	// "model=in/out,model=in/out". Models without a price cost nothing.
	Prices string `env:"NOESIS_PRICES"`

	// Metrics: Prometheus /metrics, /healthz and /readyz on this address when set.
	MetricsAddr string `env:"NOESIS_METRICS_ADDR"`

	// Tracing: OpenTelemetry spans per stage and model call, exported over
	// OTLP/HTTP when set (for example http://127.0.0.1:4318). The exporter also
	// reads the other standard OTEL_EXPORTER_OTLP_* variables.
	OTLPEndpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`

	// Profiling: net/http/pprof on this address when set (for example 127.0.0.1:6060).
	PprofAddr string `env:"NOESIS_PPROF_ADDR"`

	// Logs
	LogLevel  string `env:"NOESIS_LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"NOESIS_LOG_FORMAT" envDefault:"auto"` // auto: console on a terminal, else JSON
}

// Load reads envFile (when it exists; an explicitly named file must exist),
// then the environment, applies defaults and validates. Variables already in
// the environment win over the file.
func Load(envFile string, explicit bool) (Config, error) {
	if envFile != "" {
		if _, err := os.Stat(envFile); err == nil {
			if err := godotenv.Load(envFile); err != nil {
				return Config{}, fmt.Errorf("config: read %s: %w", envFile, err)
			}
		} else if explicit {
			return Config{}, fmt.Errorf("config: env file %s: %w", envFile, err)
		}
	}
	environ, used := environment()
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		return Config{}, describeEnvError(err, environ)
	}
	c.renamedUsed = used
	c.readJudgeSettings(environ)
	return c, c.Validate()
}

// Defaults returns every setting at its default, ignoring the environment.
func Defaults() Config {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: map[string]string{}}); err != nil {
		panic(fmt.Sprintf("config: defaults do not parse: %v", err)) // a bug in the tags above
	}
	return c
}

// Validate names the first setting that cannot work and what it expects.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	switch c.Provider {
	case "auto", router.KindNebius, router.KindOpenAI, router.KindModal, router.KindSim:
	case "gemini", "anthropic":
		bad("LLM_PROVIDER", "%q is not supported: noesis speaks OpenAI-compatible APIs; use nebius, openai (with OPENAI_BASE_URL), sim or auto", c.Provider)
	default:
		bad("LLM_PROVIDER", "want auto, nebius, openai, modal or sim, got %q", c.Provider)
	}
	if c.Provider == router.KindNebius && c.NebiusAPIKey == "" {
		bad("NEBIUS_API_KEY", "required when LLM_PROVIDER=nebius")
	}
	if c.Provider == router.KindOpenAI && c.OpenAIBaseURL == "" {
		bad("OPENAI_BASE_URL", "required when LLM_PROVIDER=openai (for example http://127.0.0.1:8000/v1)")
	}
	if c.Provider == router.KindModal && c.ModalBaseURL == "" {
		bad("MODAL_BASE_URL", "required when LLM_PROVIDER=modal")
	}
	chains := map[string]string{}
	for _, t := range pipeline.Tiers {
		chains["NOESIS_"+strings.ToUpper(string(t))+"_CHAIN"] = c.Tier.Of(t).Chain
	}
	for name, js := range c.JudgeSettings {
		chains["NOESIS_JUDGE_"+judgeKey(name)+"_TARGET"] = js.Target
	}
	for name, msg := range c.judgeErrors {
		bad(name, "%s", msg)
	}
	for name, chain := range chains {
		refs, err := parseChain(chain)
		if err != nil {
			bad(name, "%v", err)
		}
		for _, r := range refs {
			if msg := c.providerProblem(r.kind); msg != "" {
				bad(name, "%s", msg)
			}
		}
	}
	if _, ok := modal.GPUHourPrice[c.ModalGPU]; !ok {
		bad("MODAL_GPU", "want one of A100-40GB, A100-80GB, H100, got %q", c.ModalGPU)
	}
	if c.TargetBreakerFailures <= 0 {
		bad("NOESIS_TARGET_BREAKER_FAILURES", "want a whole number above 0")
	}
	for name, u := range map[string]string{"NEBIUS_BASE_URL": c.NebiusBaseURL, "OPENAI_BASE_URL": c.OpenAIBaseURL, "MODAL_BASE_URL": c.ModalBaseURL, "NOESIS_SIM_URL": c.SimURL, "NATS_URL": c.NATSURL} {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || p.Scheme == "" || p.Host == "" {
			// The value is not shown: a value that is no URL is often a key set
			// in the wrong variable (OPENAI_BASE_URL and OPENAI_API_KEY swapped).
			bad(name, "want an absolute URL such as %s, got %d characters that are not one (not shown: is it a key in the wrong variable?)",
				map[bool]string{true: "nats://127.0.0.1:4222", false: "http://127.0.0.1:8090/v1"}[name == "NATS_URL"], len(u))
		}
	}
	if _, err := c.PriceTable(); err != nil {
		bad("NOESIS_PRICES", "%v", err)
	}
	if _, err := c.LimitTable(); err != nil {
		bad("NOESIS_LIMITS", "%v", err)
	}
	if _, _, err := c.StructuredTable(); err != nil {
		bad("NOESIS_STRUCTURED", "%v", err)
	}
	if _, err := c.BudgetTable(); err != nil {
		bad("NOESIS_BUDGETS", "%v", err)
	} else if _, _, err := c.AgentQuotaTable(); err != nil {
		bad("NOESIS_AGENT_QUOTA", "%v", err)
	}
	if (c.NATSCert == "") != (c.NATSKey == "") {
		bad("NATS_CERT", "NATS_CERT and NATS_KEY go together")
	}
	if len(c.Tiers) == 0 {
		bad("NOESIS_TIERS", "name at least one of fast, reasoning, deep")
	}
	for _, t := range c.Tiers {
		if _, err := pipeline.ParseTier(t); err != nil {
			bad("NOESIS_TIERS", "%v", err)
		}
	}
	for _, t := range pipeline.Tiers {
		ps, prefix := c.Tier.Of(t), "NOESIS_"+strings.ToUpper(string(t))+"_"
		if ps.Concurrency < 0 {
			bad(prefix+"CONCURRENCY", "want 0 (adaptive) or more, got %d", ps.Concurrency)
		}
		if ps.MaxAckPending < 0 {
			bad(prefix+"MAX_ACK_PENDING", "want 0 (derived) or more, got %d", ps.MaxAckPending)
		}
		if ps.MaxAckPending > 0 && ps.MaxAckPending < ps.Concurrency {
			bad(prefix+"MAX_ACK_PENDING", "want at least the tier's concurrency (%d), got %d", ps.Concurrency, ps.MaxAckPending)
		}
		if ps.AckWait < 0 {
			bad(prefix+"ACK_WAIT", "want 0 (the stage's default) or a duration above 0, got %s", ps.AckWait)
		}
	}
	positive := map[string]int{
		"NOESIS_MAX_DELIVER": c.MaxDeliver, "NOESIS_LLM_ATTEMPTS": c.LLMAttempts, "NOESIS_MAX_TOKENS": c.MaxTokens,
		"NOESIS_NARRATIVE_MAX_TOKENS":   c.NarrativeMaxTokens,
		"NOESIS_JUDGE_BREAKER_FAILURES": c.BreakerFailures, "MODAL_GPU_COUNT": c.ModalGPUCount, "MODAL_MAX_INPUTS": c.ModalMaxInputs, "NOESIS_JUDGE_BREAKER_SUCCESSES": c.BreakerSuccesses, "NOESIS_MAX_THOUGHT_BYTES": c.MaxThoughtBytes, "NOESIS_STREAM_REPLICAS": c.StreamReplicas,
	}
	for name, v := range positive {
		if v <= 0 {
			bad(name, "want a whole number above 0, got %d", v)
		}
	}
	if c.CallBudget < 0 {
		bad("NOESIS_CALL_BUDGET", "want 0 (derived) or more, got %d", c.CallBudget)
	}
	if c.MaxConcurrency < 4 {
		bad("NOESIS_MAX_CONCURRENCY", "want at least 4, got %d", c.MaxConcurrency)
	}
	if _, err := c.memoryBudget(); err != nil {
		bad("NOESIS_MEMORY_BUDGET", "%v", err)
	}
	if _, err := c.judges(); err != nil {
		bad("NOESIS_JUDGES", "%v", err)
	}
	durations := map[string]time.Duration{
		"NOESIS_LLM_BACKOFF": c.LLMBackoff, "NOESIS_TRIBUNAL_DEADLINE": c.TribunalDeadline,
		"NOESIS_RETRY_DELAY": c.RetryDelay, "NOESIS_DRAIN_TIMEOUT": c.DrainTimeout, "NOESIS_RATE_LIMIT_PATIENCE": c.RateLimitPatience,
		"NOESIS_JUDGE_BREAKER_COOLDOWN": c.BreakerCooldown, "NOESIS_SHARED_CACHE_LEASE": c.SharedCacheLease,
		"NOESIS_TARGET_BREAKER_COOLDOWN": c.TargetBreakerCooldown, "NOESIS_LIMIT_WINDOW": c.LimitWindow, "MODAL_COLD_START_TIMEOUT": c.ModalColdStartTimeout, "MODAL_SCALEDOWN_WINDOW": c.ModalScaledownWindow, "NOESIS_DUPLICATE_WINDOW": c.DuplicateWindow, "NOESIS_STREAM_MAX_AGE": c.StreamMaxAge,
		"NOESIS_STREAM_DLQ_MAX_AGE": c.DLQMaxAge, "NOESIS_PROGRESS_EVERY": c.ProgressEvery,
	}
	for name, d := range durations {
		if d <= 0 {
			bad(name, "want a duration above 0, got %s", d)
		}
	}
	timeouts := map[string]time.Duration{"NOESIS_LLM_TIMEOUT": c.LLMTimeout}
	for name, js := range c.JudgeSettings {
		timeouts["NOESIS_JUDGE_"+judgeKey(name)+"_TIMEOUT"] = js.Timeout
	}
	for name, d := range timeouts {
		if d < 0 {
			bad(name, "want a duration of 0 (derived) or more, got %s", d)
		}
	}
	for _, t := range pipeline.Tiers {
		if d := c.cacheTTL(t); d < 0 {
			bad("NOESIS_"+strings.ToUpper(string(t))+"_CACHE_TTL", "want a duration of 0 (off) or more, got %s", d)
		}
	}
	if c.AckWaitFor(pipeline.TierReasoning) <= c.TribunalDeadline/3 {
		bad("NOESIS_REASONING_ACK_WAIT", "want more than a third of NOESIS_TRIBUNAL_DEADLINE (%s), so heartbeats can keep a deliberation alive", c.TribunalDeadline)
	}
	for name, f := range map[string]float64{"NOESIS_TEMPERATURE": c.Temperature, "NOESIS_NARRATIVE_TEMPERATURE": c.NarrativeTemperature} {
		if f < 0 || f > 2 {
			bad(name, "want a number from 0 to 2, got %g", f)
		}
	}
	if c.SimLatencyScale < 0 {
		bad("NOESIS_SIM_LATENCY_SCALE", "want 0 or more, got %g", c.SimLatencyScale)
	}
	if c.StreamStorage != "file" && c.StreamStorage != "memory" {
		bad("NOESIS_STREAM_STORAGE", "want file or memory, got %q", c.StreamStorage)
	}
	for name, size := range map[string]ByteSize{"NOESIS_STREAM_THOUGHTS_MAX_BYTES": c.ThoughtsMaxBytes, "NOESIS_STREAM_OUTPUTS_MAX_BYTES": c.OutputsMaxBytes, "NOESIS_STREAM_DLQ_MAX_BYTES": c.DLQMaxBytes,
		"NOESIS_STREAM_TRANSCRIPTS_MAX_BYTES": c.TranscriptsMaxBytes} {
		if size < minStreamBytes {
			bad(name, "want a size of at least %s, got %s", minStreamBytes, size)
		}
	}
	if c.AgentMaxThoughts < 0 {
		bad("NOESIS_AGENT_MAX_THOUGHTS", "want 0 (an eighth of the stream at the largest thoughts) or more, got %d", c.AgentMaxThoughts)
	}
	if largest := ByteSize(c.MaxThoughtBytes + consumers.ThoughtHeaderAllowance); c.ThoughtsMaxBytes < largest {
		bad("NOESIS_STREAM_THOUGHTS_MAX_BYTES", "want at least the largest thought, NOESIS_MAX_THOUGHT_BYTES and 8 KiB of headers (%s), got %s", largest, c.ThoughtsMaxBytes)
	}
	for name, age := range map[string]time.Duration{"NOESIS_STREAM_MAX_AGE": c.StreamMaxAge, "NOESIS_STREAM_DLQ_MAX_AGE": c.DLQMaxAge} {
		if age > 0 && age < c.DuplicateWindow {
			bad(name, "want at least NOESIS_DUPLICATE_WINDOW (%s), got %s: JetStream keeps message ids no longer than messages", c.DuplicateWindow, age)
		}
	}
	if window := c.DuplicateWindow; window < c.maxRedeliverySpan() {
		bad("NOESIS_DUPLICATE_WINDOW", "%s is shorter than the longest redelivery span (%s): a late output could be published twice", window, c.maxRedeliverySpan())
	}
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		bad("NOESIS_LOG_LEVEL", "want trace, debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "auto", "json", "console":
	default:
		bad("NOESIS_LOG_FORMAT", "want auto, json or console, got %q", c.LogFormat)
	}
	switch c.SimLengths {
	case sim.LengthsRealistic, sim.LengthsSeed:
	default:
		bad("NOESIS_SIM_LENGTHS", "want realistic or seed, got %q", c.SimLengths)
	}
	switch c.SimResponseFormat {
	case sim.FormatHonour, sim.FormatRefuse, sim.FormatIgnore:
	default:
		bad("NOESIS_SIM_RESPONSE_FORMAT", "want honour, refuse or ignore, got %q", c.SimResponseFormat)
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
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
