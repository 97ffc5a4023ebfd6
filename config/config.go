package config

import (
	"fmt"
	"os"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"
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
	// AgentMaxThoughts bounds one agent's thoughts held in NOESIS_THOUGHTS;
	// 0: as many of the largest thoughts as fill an eighth of the stream
	// (consumers.StreamsConfig), 1,820 with the defaults.
	AgentMaxThoughts int64         `env:"NOESIS_AGENT_MAX_THOUGHTS" envDefault:"0"`
	OutputsMaxBytes  ByteSize      `env:"NOESIS_STREAM_OUTPUTS_MAX_BYTES" envDefault:"1GiB"`
	DLQMaxBytes      ByteSize      `env:"NOESIS_STREAM_DLQ_MAX_BYTES" envDefault:"256MiB"`
	DLQMaxAge        time.Duration `env:"NOESIS_STREAM_DLQ_MAX_AGE" envDefault:"168h"`
	// AgentMaxDeadLetters bounds one agent's dead letters of each kind
	// (input, and each stage) held in NOESIS_DLQ: past it the agent's own
	// oldest go. 0: its four kinds together fill at most an eighth of the
	// stream at the largest letters (consumers.StreamsConfig), 97 of each
	// with the defaults.
	AgentMaxDeadLetters int64 `env:"NOESIS_AGENT_MAX_DEAD_LETTERS" envDefault:"0"`
	// AgentMaxReviews bounds the reviews one agent has waiting for a person
	// in NOESIS_REVIEWS: past it its verdicts that require one are not
	// published and its thoughts wait. 0: review.DefaultMaxPerAgent (512).
	AgentMaxReviews int `env:"NOESIS_AGENT_MAX_REVIEWS" envDefault:"0"`

	// TranscriptsMaxBytes bounds NOESIS_TRANSCRIPTS, the verdicts'
	// transcripts (kept NOESIS_STREAM_MAX_AGE; the oldest go first when full).
	TranscriptsMaxBytes ByteSize `env:"NOESIS_STREAM_TRANSCRIPTS_MAX_BYTES" envDefault:"512MiB"`
	// AgentMaxTranscripts bounds one agent's transcripts held in
	// NOESIS_TRANSCRIPTS: past it the agent's own oldest go. 0:
	// consumers.DefaultMaxTranscriptsPerAgent (4,096).
	AgentMaxTranscripts int64 `env:"NOESIS_AGENT_MAX_TRANSCRIPTS" envDefault:"0"`
	// AgentMaxOutputs bounds one agent's outputs of each stage held in
	// NOESIS_OUTPUTS: past it the agent's own oldest of that stage go. 0:
	// consumers.DefaultMaxOutputsPerAgent (4,096).
	AgentMaxOutputs int64 `env:"NOESIS_AGENT_MAX_OUTPUTS" envDefault:"0"`
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
