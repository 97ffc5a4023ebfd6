package config_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/embedded"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
)

func TestDefaultsFollowTheSeed(t *testing.T) {
	c := config.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	models := c.Models()
	if models[pipeline.TierFast] != router.DefaultFastModel || models[pipeline.TierReasoning] != router.DefaultReasoningModel || models[pipeline.TierDeep] != router.DefaultDeepModel {
		t.Errorf("models %v", models)
	}
	if c.ResolvedProvider() != "sim" {
		t.Errorf("auto without a key resolves to %s, want sim", c.ResolvedProvider())
	}
	ttl := c.Cache().TTL
	if ttl[pipeline.TierFast] != time.Minute || ttl[pipeline.TierReasoning] != 5*time.Minute || ttl[pipeline.TierDeep] != 30*time.Minute {
		t.Errorf("cache TTLs %v", ttl)
	}
	tc := c.Tribunal()
	// Timing fit for reasoning models (docs/judges.md): no per-judge timeout,
	// per-call timeouts sized by the token budget, a deadline a whole budget fits in.
	if tc.Deadline != 150*time.Second || tc.Judges[0].Timeout != 0 || tc.Judges[1].Timeout != 0 || tc.Judges[2].Timeout != 0 {
		t.Errorf("tribunal %+v", tc)
	}
	if c.LLMAttempts != 3 || c.LLMBackoff != time.Second || c.LLMTimeout != 0 || c.Temperature != 0.7 || c.MaxTokens != 8192 {
		t.Errorf("call defaults differ from the origin's: %+v", c)
	}
}

func TestEachTierGetsItsOwnModelFromEnv(t *testing.T) {
	t.Setenv("NEBIUS_API_KEY", "k")
	t.Setenv("NEBIUS_MODEL", "fast-model")
	t.Setenv("NEBIUS_MODEL_REASONING", "reasoning-model")
	t.Setenv("NEBIUS_MODEL_DEEP", "deep-model")
	c, err := config.Load("", false)
	if err != nil {
		t.Fatal(err)
	}
	if c.ResolvedProvider() != "nebius" {
		t.Fatalf("auto with a key resolves to %s", c.ResolvedProvider())
	}
	rc := c.Router("")
	got := map[pipeline.Tier]string{}
	for tier, names := range rc.Tiers {
		for _, tg := range rc.Targets {
			if tg.Name == names[0] {
				got[tier] = tg.Model
			}
		}
	}
	want := map[pipeline.Tier]string{pipeline.TierFast: "fast-model", pipeline.TierReasoning: "reasoning-model", pipeline.TierDeep: "deep-model"}
	for tier, m := range want {
		if got[tier] != m {
			t.Errorf("tier %s routed to %q, want %q", tier, got[tier], m)
		}
	}
	if rc.Providers[0].BaseURL != router.DefaultNebiusBaseURL {
		t.Errorf("base URL %s", rc.Providers[0].BaseURL)
	}
}

func TestValidationNamesTheVariable(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"LLM_PROVIDER": "nebius"}, "NEBIUS_API_KEY: required when LLM_PROVIDER=nebius"},
		{map[string]string{"LLM_PROVIDER": "gemini"}, "LLM_PROVIDER: \"gemini\" is not supported"},
		{map[string]string{"LLM_PROVIDER": "openai"}, "OPENAI_BASE_URL: required"},
		{map[string]string{"NOESIS_LLM_TIMEOUT": "soon"}, "NOESIS_LLM_TIMEOUT: want a duration such as 500ms, 30s or 5m, got \"soon\""},
		{map[string]string{"NOESIS_FAST_CONCURRENCY": "many"}, "NOESIS_FAST_CONCURRENCY: want a whole number"},
		{map[string]string{"NOESIS_MAX_CONCURRENCY": "2"}, "NOESIS_MAX_CONCURRENCY: want at least 4"},
		{map[string]string{"NOESIS_TIERS": "fast,turbo"}, "NOESIS_TIERS: unknown tier \"turbo\""},
		{map[string]string{"NOESIS_TEMPERATURE": "3"}, "NOESIS_TEMPERATURE: want a number from 0 to 2"},
		{map[string]string{"NATS_URL": "localhost"}, "NATS_URL: want an absolute URL"},
		{map[string]string{"NOESIS_DUPLICATE_WINDOW": "1m"}, "NOESIS_DUPLICATE_WINDOW: 1m0s is shorter than the longest redelivery span"},
		{map[string]string{"NOESIS_FAST_CONCURRENCY": "16", "NOESIS_FAST_MAX_ACK_PENDING": "8"}, "NOESIS_FAST_MAX_ACK_PENDING: want at least the tier's concurrency"},
		{map[string]string{"NOESIS_REASONING_CONCURRENCY": "-1"}, "NOESIS_REASONING_CONCURRENCY: want 0 (adaptive) or more"},
		{map[string]string{"NOESIS_MEMORY_BUDGET": "lots"}, "NOESIS_MEMORY_BUDGET: want a size such as 256MiB"},
		// Nested settings share field names: the message names the variable.
		{map[string]string{"NOESIS_DEEP_ACK_WAIT": "soon"}, "NOESIS_DEEP_ACK_WAIT: want a duration"},
		{map[string]string{"NOESIS_REASONING_MAX_ACK_PENDING": "lots"}, "NOESIS_REASONING_MAX_ACK_PENDING: want a whole number"},
		{map[string]string{"NOESIS_LOG_LEVEL": "loud"}, "NOESIS_LOG_LEVEL"},
		{map[string]string{"NOESIS_PRICES": "llama"}, "NOESIS_PRICES: want model=in/out"},
		{map[string]string{"NOESIS_PRICES": "llama=1/x"}, "NOESIS_PRICES: prices in \"llama=1/x\" must be numbers"},
		{map[string]string{"NATS_CERT": "c.pem"}, "NATS_CERT: NATS_CERT and NATS_KEY go together"},
		{map[string]string{"NOESIS_STREAM_THOUGHTS_MAX_BYTES": "lots"}, "NOESIS_STREAM_THOUGHTS_MAX_BYTES: want a size such as 512MiB or 1GiB, got \"lots\""},
		{map[string]string{"NOESIS_STREAM_DLQ_MAX_BYTES": "64KiB"}, "NOESIS_STREAM_DLQ_MAX_BYTES: want a size of at least 1.0 MiB, got 64 KiB"},
		{map[string]string{"NOESIS_MAX_THOUGHT_BYTES": "2097152", "NOESIS_STREAM_THOUGHTS_MAX_BYTES": "2MiB"}, "NOESIS_STREAM_THOUGHTS_MAX_BYTES: want at least the largest thought"},
		{map[string]string{"NOESIS_STREAM_DLQ_MAX_AGE": "10m"}, "NOESIS_STREAM_DLQ_MAX_AGE: want at least NOESIS_DUPLICATE_WINDOW"},
		{map[string]string{"NOESIS_AGENT_MAX_TRANSCRIPTS": "-1"}, "NOESIS_AGENT_MAX_TRANSCRIPTS: want 0 (4096) or more, got -1"},
		{map[string]string{"NOESIS_FAIR_SHARE": "maybe"}, "NOESIS_FAIR_SHARE: want true or false, got \"maybe\""},
		// The quota's errors name their own variable, once.
		{map[string]string{"NOESIS_AGENT_QUOTA": "lots"}, "config: NOESIS_AGENT_QUOTA: want rpm/tpm/usd such as 60/100000/5 (0: no limit), got \"lots\""},
		{map[string]string{"NOESIS_AGENT_QUOTAS": "alice"}, "config: NOESIS_AGENT_QUOTAS: want agent=rpm/tpm/usd"},
		{map[string]string{"NOESIS_AGENT_BUDGET_SHARE": "2"}, "config: NOESIS_AGENT_BUDGET_SHARE: want 0 to 1, got 2"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := config.Load("", false)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to say %q", err, c.want)
			}
		})
	}
}

func TestEnvFileAndPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, ".env")
	if err := os.WriteFile(file, []byte("NOESIS_FAST_CONCURRENCY=7\nNOESIS_DEEP_CONCURRENCY=5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOESIS_DEEP_CONCURRENCY", "9")                     // the environment wins over the file
	t.Cleanup(func() { os.Unsetenv("NOESIS_FAST_CONCURRENCY") }) // what the file set in the process
	c, err := config.Load(file, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tier.Fast.Concurrency != 7 || c.Tier.Deep.Concurrency != 9 {
		t.Fatalf("fast %d deep %d, want 7 (file) and 9 (env)", c.Tier.Fast.Concurrency, c.Tier.Deep.Concurrency)
	}
	if _, err := config.Load(filepath.Join(dir, "missing.env"), true); err == nil {
		t.Fatal("an explicitly named missing env file must be an error")
	}
	if _, err := config.Load(filepath.Join(dir, "missing.env"), false); err != nil {
		t.Fatalf("the default .env may be missing: %v", err)
	}
}

// nats.conf runs a standalone server with the embedded server's settings.
func TestNatsConfMatchesEmbeddedDefaults(t *testing.T) {
	opts, err := server.ProcessConfigFile("../nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	c := config.Defaults()
	emb, err := c.Embedded().Options()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Host != emb.Host || opts.Port != emb.Port || opts.StoreDir != emb.StoreDir || !opts.JetStream ||
		opts.MaxPayload != emb.MaxPayload || opts.ServerName != emb.ServerName {
		t.Fatalf("nats.conf: host %s port %d store %s js %v payload %d name %s; embedded: %s %d %s %d %s",
			opts.Host, opts.Port, opts.StoreDir, opts.JetStream, opts.MaxPayload, opts.ServerName, emb.Host, emb.Port, emb.StoreDir, emb.MaxPayload, emb.ServerName)
	}
	if c.NATSListen != embedded.Defaults.Listen || c.DataDir != embedded.Defaults.DataDir {
		t.Fatalf("config defaults %s %s differ from the embedded defaults", c.NATSListen, c.DataDir)
	}
}

func TestEnvExampleListsEverySetting(t *testing.T) {
	example, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	names := config.Names()
	for _, want := range []string{"NOESIS_FAST_CONCURRENCY", "NOESIS_REASONING_ACK_WAIT", "NOESIS_DEEP_MAX_ACK_PENDING", "NATS_URL"} {
		if !slices.Contains(names, want) {
			t.Errorf("config.Names() lacks %s: %v", want, names)
		}
	}
	for _, name := range names {
		if !strings.Contains(string(example), "\n"+name+"=") {
			t.Errorf(".env.example does not list %s", name)
		}
		if !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("docs/configuration.md does not document %s", name)
		}
	}
}

// nats-cluster.conf parses, names three routes and keeps JetStream on.
func TestNatsClusterConf(t *testing.T) {
	t.Setenv("NOESIS_NODE", "nats-2")
	opts, err := server.ProcessConfigFile("../nats-cluster.conf")
	if err != nil {
		t.Fatal(err)
	}
	if opts.ServerName != "nats-2" || !opts.JetStream || len(opts.Routes) != 3 || opts.Cluster.Name != "noesis" || opts.Cluster.Port != 6222 {
		t.Fatalf("name %s js %v routes %d cluster %s:%d", opts.ServerName, opts.JetStream, len(opts.Routes), opts.Cluster.Name, opts.Cluster.Port)
	}
}

// A key set in a URL variable (OPENAI_BASE_URL and OPENAI_API_KEY swapped)
// never appears in the error.
func TestSwappedKeyIsNotPrinted(t *testing.T) {
	c := config.Defaults()
	c.Provider, c.OpenAIBaseURL, c.OpenAIAPIKey = "openai", "sk-live-0123456789abcdef", "https://api.example.com/v1"
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "sk-live") || !strings.Contains(err.Error(), "OPENAI_BASE_URL") {
		t.Fatalf("error %v: want OPENAI_BASE_URL named and the key not shown", err)
	}
}

// The HTTP client keeps an idle connection for every call the pools may make
// at once: with adaptive pools, up to their ceiling (an HTTP/1.1 provider
// takes one connection a call; fewer idle ones would be redialled).
func TestIdleConnectionsFollowThePools(t *testing.T) {
	c := config.Defaults()
	if got, want := c.Router("").MaxIdleConnsPerHost, 5*c.MaxConcurrency; got != want {
		t.Errorf("adaptive pools: %d idle connections per host, want %d (fast + 3 judges + deep, each up to NOESIS_MAX_CONCURRENCY)", got, want)
	}
	c.Tier.Fast.Concurrency, c.Tier.Reasoning.Concurrency, c.Tier.Deep.Concurrency = 10, 20, 5
	if got := c.Router("").MaxIdleConnsPerHost; got != 75 {
		t.Errorf("fixed pools 10/20/5: %d idle connections per host, want 75", got)
	}
}

// The streams are bounded by default, with the bounds consumers documents,
// and a size reads with or without its unit.
func TestStreamsAreBoundedByDefault(t *testing.T) {
	defaults := config.Defaults()
	sc := defaults.Streams()
	if sc.ThoughtsMaxBytes != consumers.DefaultThoughtsMaxBytes || sc.OutputsMaxBytes != consumers.DefaultOutputsMaxBytes ||
		sc.DLQMaxBytes != consumers.DefaultDLQMaxBytes || sc.DLQMaxAge != consumers.DefaultDLQMaxAge || sc.MaxAge != 24*time.Hour {
		t.Errorf("default streams %+v", sc)
	}
	t.Setenv("NOESIS_STREAM_THOUGHTS_MAX_BYTES", "2GiB")
	t.Setenv("NOESIS_STREAM_OUTPUTS_MAX_BYTES", "3000000")
	t.Setenv("NOESIS_AGENT_MAX_TRANSCRIPTS", "100")
	t.Setenv("NOESIS_AGENT_MAX_OUTPUTS", "200")
	c, err := config.Load("", false)
	if err != nil {
		t.Fatal(err)
	}
	if sc := c.Streams(); sc.ThoughtsMaxBytes != 2<<30 || sc.OutputsMaxBytes != 3000000 || sc.MaxTranscriptsPerAgent != 100 || sc.MaxOutputsPerAgent != 200 {
		t.Errorf("streams %+v", sc)
	}
}

// One agent's share of NOESIS_THOUGHTS by default is as many of the largest
// thoughts as fill an eighth of the stream (docs/configuration.md), not a
// count under which one agent could fill it: 100,000 let a hostile agent
// fill the 1 GiB with 14,643 thoughts of 72 KiB.
func TestOneAgentHoldsAnEighthOfTheThoughtsByDefault(t *testing.T) {
	defaults := config.Defaults()
	for _, s := range consumers.StreamConfigs(defaults.Streams()) {
		if s.Name != consumers.StreamThoughts {
			continue
		}
		largest := int64(defaults.MaxThoughtBytes + consumers.ThoughtHeaderAllowance)
		if got := s.MaxMsgsPerSubject; got != 1820 || got*largest > s.MaxBytes/8 {
			t.Fatalf("one agent may hold %d thoughts of up to %d B in a %d B stream; want 1,820, an eighth of it", got, largest, s.MaxBytes)
		}
		return
	}
	t.Fatal("no thoughts stream")
}

// The embedded server takes the largest thought noesis takes, within NATS's
// bounds: its default 1 MiB at least, 64 MiB at most.
func TestEmbeddedServerTakesTheLargestThought(t *testing.T) {
	for _, c := range []struct {
		maxThought int
		want       int32
	}{
		{64 << 10, 1 << 20},
		{2 << 20, 2<<20 + consumers.ThoughtHeaderAllowance},
		{100 << 20, 64 << 20},
	} {
		cfg := config.Config{MaxThoughtBytes: c.maxThought}
		if got := cfg.Embedded().MaxPayload; got != c.want {
			t.Errorf("NOESIS_MAX_THOUGHT_BYTES %d: max_payload %d, want %d", c.maxThought, got, c.want)
		}
	}
}

// A consumer whose unacknowledged thoughts are fixed is warned of when one
// agent past its request quota could fill it with held thoughts; the
// adaptive default, a quota with no window, and a MAX_ACK_PENDING above one
// agent's quota of thoughts are not.
func TestQuotaHoldRisks(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want []string // one warning a tier, naming these
	}{
		{"adaptive", map[string]string{"NOESIS_AGENT_QUOTA": "10/0/0"}, nil},
		{"no quota", map[string]string{"NOESIS_FAST_CONCURRENCY": "2"}, nil},
		{"budget only", map[string]string{"NOESIS_FAST_CONCURRENCY": "2", "NOESIS_AGENT_QUOTA": "0/0/5"}, nil},
		{"fixed, every agent's rpm", map[string]string{"NOESIS_FAST_CONCURRENCY": "2", "NOESIS_AGENT_QUOTA": "10/0/0"},
			[]string{"the narrative consumer hands out at most 8 unacknowledged thoughts", "NOESIS_FAST_MAX_ACK_PENDING above 1820"}},
		{"fixed, one agent's tpm", map[string]string{"NOESIS_REASONING_CONCURRENCY": "64", "NOESIS_AGENT_QUOTAS": "alice=0/1000/0"},
			[]string{"the tribunal consumer hands out at most 256", "NOESIS_REASONING_CONCURRENCY adaptive"}},
		{"set, too low", map[string]string{"NOESIS_FAST_MAX_ACK_PENDING": "1000", "NOESIS_AGENT_QUOTA": "10/0/0"},
			[]string{"at most 1000 unacknowledged thoughts"}},
		{"set, above the quota of thoughts", map[string]string{"NOESIS_FAST_CONCURRENCY": "2", "NOESIS_FAST_MAX_ACK_PENDING": "2000", "NOESIS_AGENT_QUOTA": "10/0/0"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cfg, err := config.Load("", false)
			if err != nil {
				t.Fatal(err)
			}
			risks := cfg.QuotaHoldRisks()
			if len(c.want) == 0 {
				if len(risks) != 0 {
					t.Fatalf("warned: %q", risks)
				}
				return
			}
			if len(risks) != 1 {
				t.Fatalf("warnings %q, want one", risks)
			}
			for _, w := range c.want {
				if !strings.Contains(risks[0], w) {
					t.Errorf("warning %q does not say %q", risks[0], w)
				}
			}
		})
	}
}
