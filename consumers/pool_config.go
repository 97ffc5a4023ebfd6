package consumers

import (
	"fmt"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
)

// PoolConfig configures one stage's worker pool.
type PoolConfig struct {
	Stage pipeline.Stage
	// Concurrency, when positive, is how many thoughts the pool works on at
	// once, fixed. 0 (the default) is an adaptive limit (see adaptive.Concurrency) that
	// starts at 16 and moves within [4, MaxConcurrency].
	Concurrency int
	// MaxConcurrency bounds the adaptive limit; default 4096.
	MaxConcurrency int
	// MemoryBudget, in bytes of Go heap, stops the adaptive limit from
	// growing near it (see adaptive.Config); 0: none.
	MemoryBudget uint64
	// MaxAckPending caps the consumer's unacknowledged messages across every
	// process sharing it; default 4 x Concurrency when fixed, else it follows
	// the live workers' limits, from MaxConcurrency up (ackpending.go).
	MaxAckPending int
	// AckWait is how long the server waits for an ack before redelivering;
	// in-progress heartbeats keep a slow call alive; default DefaultAckWait.
	AckWait time.Duration
	// MaxDeliver is how many times a thought is tried before it is dead-lettered; default 5.
	MaxDeliver int
	// RetryDelay is the first nak delay; it doubles per delivery, up to 1 min; default 1 s.
	RetryDelay time.Duration
	// MaxThoughtBytes refuses bigger payloads; default pipeline.DefaultMaxThoughtBytes.
	MaxThoughtBytes int
	// DrainTimeout is how long Run lets in-flight work finish after its
	// context ends before cancelling it (and nak'ing the thoughts); default 30 s.
	DrainTimeout time.Duration
	// CallBudget bounds the upstream model calls one delivery of a thought may
	// make, retries and judges included; default 10 (the tribunal's worst case
	// is 3 judges x 3 tries); negative: unlimited.
	CallBudget int
	// RateLimitPatience is how long a worker keeps a rate-limited thought,
	// waiting out the provider's Retry-After and trying again, before it gives
	// the delivery up; default 5 min. Rate limits thus slow the pool down
	// instead of spending the thought's deliveries.
	RateLimitPatience time.Duration
	// FIFO serves the pulled thoughts in the order pulled, and their model
	// calls a target's slots first come, first served, instead of by
	// priority and in turn between agents (the default; pipeline/fair). For
	// measuring what fairness costs. Each agent's quotas hold either way.
	FIFO bool
	// ProgressEvery is how often a stage still at work on a thought says so
	// in the log at info (consumers' logged middleware); default
	// DefaultProgressEvery.
	ProgressEvery time.Duration
}

// FixedAckPending returns the consumer's MaxAckPending when it is fixed (set,
// or 4 x a fixed Concurrency), and false when it follows the live workers'
// limits (ackpending.go), from MaxConcurrency up.
func (c PoolConfig) FixedAckPending() (int, bool) {
	set := c.MaxAckPending > 0
	c = c.withDefaults()
	return c.MaxAckPending, set || c.Concurrency > 0
}

func (c PoolConfig) withDefaults() PoolConfig {
	if c.MaxConcurrency <= 0 {
		c.MaxConcurrency = 4096
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = c.MaxConcurrency
		if c.Concurrency > 0 {
			c.MaxAckPending = 4 * c.Concurrency
		}
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait(c.Stage)
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	if c.MaxThoughtBytes <= 0 {
		c.MaxThoughtBytes = pipeline.DefaultMaxThoughtBytes
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.CallBudget == 0 {
		c.CallBudget = 10
	}
	if c.RateLimitPatience <= 0 {
		c.RateLimitPatience = 5 * time.Minute
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = DefaultProgressEvery
	}
	return c
}

// DefaultAckWait is a stage's ack wait unless configured: 30 s for
// narratives, 60 s for verdicts, 120 s for analyses (the tiers' model times
// grow in that order; heartbeats keep a longer call alive either way).
func DefaultAckWait(s pipeline.Stage) time.Duration {
	switch s {
	case pipeline.StageTribunal:
		return time.Minute
	case pipeline.StageAnalysis:
		return 2 * time.Minute
	}
	return 30 * time.Second
}

// NakDelay is how long a thought that failed its delivery-th delivery waits
// before the next: base doubled per delivery, at most a minute.
func NakDelay(base time.Duration, delivery uint64) time.Duration {
	return min(base<<min(max(delivery, 1)-1, 6), time.Minute)
}

// Validate reports a config that cannot work.
func (c PoolConfig) Validate() error {
	if !c.Stage.Valid() {
		return fmt.Errorf("pool: unknown stage %q", c.Stage)
	}
	if c.Concurrency < 0 || c.MaxConcurrency < 0 || c.MaxAckPending < 0 || c.MaxDeliver < 0 {
		return fmt.Errorf("pool %s: concurrency, max concurrency, max ack pending and max deliver must not be negative", c.Stage)
	}
	if c.MaxAckPending > 0 && c.MaxAckPending < c.Concurrency {
		return fmt.Errorf("pool %s: max ack pending (%d) is below concurrency (%d): workers would sit idle", c.Stage, c.MaxAckPending, c.Concurrency)
	}
	return nil
}
