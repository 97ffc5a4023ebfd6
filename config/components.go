package config

import (
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/embedded"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
)

// CheckServe reports a service that would answer real traffic with the
// simulator without being asked to: LLM_PROVIDER=auto with no API key on an
// external NATS (NATS_URL set). The simulator runs only when asked for
// (LLM_PROVIDER=sim, or a chain naming it) or on the embedded NATS of
// `make run`. The error says what to set.
func (c *Config) CheckServe() error {
	if c.Provider == "auto" && c.NebiusAPIKey == "" && c.NATSURL != "" {
		return errors.New("LLM_PROVIDER=auto found no NEBIUS_API_KEY, and noesis will not answer thoughts on an external NATS (NATS_URL is set) " +
			"with simulated models: set NEBIUS_API_KEY; or LLM_PROVIDER=openai with OPENAI_BASE_URL and OPENAI_API_KEY " +
			"(or modal with MODAL_BASE_URL); or LLM_PROVIDER=sim to simulate on purpose")
	}
	return nil
}

// RunTiers returns the tiers this process runs.
func (c *Config) RunTiers() []pipeline.Tier {
	var out []pipeline.Tier
	seen := map[pipeline.Tier]bool{}
	for _, s := range c.Tiers {
		if t, err := pipeline.ParseTier(s); err == nil && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// Cache returns the answer cache's config.
func (c *Config) Cache() router.CacheConfig {
	cc := router.CacheConfig{MaxBytes: c.CacheMaxBytes, TTL: map[pipeline.Tier]time.Duration{}}
	for _, t := range pipeline.Tiers {
		cc.TTL[t] = c.cacheTTL(t)
	}
	return cc
}

// AckWaitFor returns the ack wait of a tier's pool: its setting, or the
// stage's default.
func (c *Config) AckWaitFor(t pipeline.Tier) time.Duration {
	if w := c.Tier.Of(t).AckWait; w > 0 {
		return w
	}
	stage, _ := pipeline.StageForTier(t)
	return consumers.DefaultAckWait(stage)
}

// Pool returns the worker pool config of a tier.
func (c *Config) Pool(t pipeline.Tier) consumers.PoolConfig {
	stage, _ := pipeline.StageForTier(t)
	ps := c.Tier.Of(t)
	pc := consumers.PoolConfig{Stage: stage, Concurrency: ps.Concurrency, MaxAckPending: ps.MaxAckPending, AckWait: ps.AckWait,
		MaxConcurrency: c.MaxConcurrency, MaxDeliver: c.MaxDeliver, RetryDelay: c.RetryDelay, MaxThoughtBytes: c.MaxThoughtBytes,
		DrainTimeout: c.DrainTimeout, CallBudget: c.callBudget(), RateLimitPatience: c.RateLimitPatience, FIFO: !c.FairShare,
		ProgressEvery: c.ProgressEvery}
	pc.MemoryBudget, _ = c.memoryBudget() // validated
	return pc
}

// QuotaHoldRisks warns, for each tier this process runs whose consumer hands
// out a fixed number of unacknowledged thoughts (a fixed concurrency, or
// MAX_ACK_PENDING set), when one agent past its requests or tokens a window
// (NOESIS_AGENT_QUOTA, NOESIS_AGENT_QUOTAS) could fill them. A worker holds
// such an agent's thought unacknowledged until the agent's next window (it
// gives its slot of the pool back meanwhile), and the consumer every agent
// shares hands out nothing past its MaxAckPending: with as many of one
// agent's thoughts held, every other agent's wait for that window too (a
// nak with a delay would stay unacknowledged as well). One agent holds at
// most its quota of thoughts in NOESIS_THOUGHTS (NOESIS_AGENT_MAX_THOUGHTS),
// so a MaxAckPending above it leaves the others room. The adaptive default
// starts at NOESIS_MAX_CONCURRENCY (4,096), above the 1,820 thoughts of the
// default quota; the check is for the settings that leave it.
func (c *Config) QuotaHoldRisks() []string {
	every, own, err := c.AgentQuotaTable()
	if err != nil {
		return nil // Validate says what is wrong
	}
	windowed := every.RPM > 0 || every.TPM > 0
	for _, q := range own {
		windowed = windowed || q.RPM > 0 || q.TPM > 0
	}
	if !windowed {
		return nil
	}
	perAgent := c.Streams().ThoughtsPerAgent()
	var out []string
	for _, t := range c.RunTiers() {
		pending, fixed := c.Pool(t).FixedAckPending()
		if !fixed || int64(pending) > perAgent {
			continue
		}
		conc, ack := tierVar(t, "CONCURRENCY"), tierVar(t, "MAX_ACK_PENDING")
		stage, _ := pipeline.StageForTier(t)
		out = append(out, fmt.Sprintf("the %s consumer hands out at most %d unacknowledged thoughts (%s fixed, or %s), "+
			"and one agent past its request quota may have up to %d thoughts held for its next window (NOESIS_AGENT_MAX_THOUGHTS): "+
			"they would hold every other agent's thoughts until then; set %s above %d, or leave %s adaptive (0)",
			stage, pending, conc, ack, perAgent, ack, perAgent, conc))
	}
	return out
}

// tierVar is tier t's setting name: NOESIS_<TIER>_<name>.
func tierVar(t pipeline.Tier, name string) string {
	return "NOESIS_" + strings.ToUpper(string(t)) + "_" + name
}

// Streams returns the streams' config.
func (c *Config) Streams() consumers.StreamsConfig {
	storage := jetstream.FileStorage
	if c.StreamStorage == "memory" {
		storage = jetstream.MemoryStorage
	}
	return consumers.StreamsConfig{Replicas: c.StreamReplicas, Storage: storage, DuplicateWindow: c.DuplicateWindow, MaxAge: c.StreamMaxAge, MaxThoughtBytes: c.MaxThoughtBytes,
		ThoughtsMaxBytes: int64(c.ThoughtsMaxBytes), OutputsMaxBytes: int64(c.OutputsMaxBytes), DLQMaxBytes: int64(c.DLQMaxBytes), DLQMaxAge: c.DLQMaxAge,
		MaxThoughtsPerAgent: c.AgentMaxThoughts, TranscriptsMaxBytes: int64(c.TranscriptsMaxBytes), MaxTranscriptsPerAgent: c.AgentMaxTranscripts, MaxOutputsPerAgent: c.AgentMaxOutputs,
		MaxDeadLettersPerAgent: c.AgentMaxDeadLetters}
}

// Embedded returns the embedded NATS server's config.
//
// Its max_payload fits the largest thought noesis takes
// (NOESIS_MAX_THOUGHT_BYTES and its headers), at least NATS's default 1 MiB
// and at most NATS's own limit of 64 MiB: a larger setting would otherwise
// have the server refuse such a thought at publish, before noesis sees it.
func (c *Config) Embedded() embedded.Config {
	payload := min(max(int64(c.MaxThoughtBytes)+consumers.ThoughtHeaderAllowance, int64(embedded.Defaults.MaxPayload)), maxServerPayload)
	return embedded.Config{Listen: c.NATSListen, DataDir: c.DataDir, MaxPayload: int32(payload)}
}

// maxServerPayload is the largest max_payload a NATS server takes.
const maxServerPayload = 64 << 20

// Sim returns the simulator's config.
func (c *Config) Sim() sim.Config {
	return sim.Config{LatencyScale: c.SimLatencyScale, Lengths: c.SimLengths, ResponseFormat: c.SimResponseFormat}
}

// ApplyMemoryBudget makes NOESIS_MEMORY_BUDGET Go's soft memory limit too,
// unless GOMEMLIMIT sets one: the collector then works harder near the
// budget, as the pools' limits stop growing there. It returns the budget in
// bytes (0: none).
func (c *Config) ApplyMemoryBudget() uint64 {
	budget, _ := c.memoryBudget() // validated
	if budget > 0 && c.MemoryBudget != "" && debug.SetMemoryLimit(-1) == math.MaxInt64 {
		debug.SetMemoryLimit(int64(budget))
	}
	return budget
}

// memoryBudget is NOESIS_MEMORY_BUDGET in bytes, or else GOMEMLIMIT's (Go's
// soft memory limit, when one is set), or 0: none. The adaptive pool limits
// stop growing near it.
func (c *Config) memoryBudget() (uint64, error) {
	if c.MemoryBudget != "" {
		n, err := humanize.ParseBytes(c.MemoryBudget)
		if err != nil {
			return 0, fmt.Errorf("want a size such as 256MiB: %v", err)
		}
		return n, nil
	}
	if lim := debug.SetMemoryLimit(-1); lim > 0 && lim < math.MaxInt64 {
		return uint64(lim), nil
	}
	return 0, nil
}
