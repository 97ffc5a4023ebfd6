package config

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// TierSettings are one tier's settings, read under NOESIS_<TIER>_
// (NOESIS_FAST_CHAIN, NOESIS_REASONING_CONCURRENCY, ...). A zero is the
// owning package's default, so each default is written once, there:
// concurrency 0 is the adaptive limit (adaptive.Concurrency) within
// [4, NOESIS_MAX_CONCURRENCY]; max ack pending 0 is 4 x a fixed concurrency,
// or for an adaptive pool what the live limits call for (at least
// NOESIS_MAX_CONCURRENCY; consumers/ackpending.go); ack wait 0 is the stage's
// (consumers.DefaultAckWait: 30 s, 60 s, 120 s); an unset cache TTL is the
// seed's (router.DefaultCacheTTL: 1 min, 5 min, 30 min), and 0 turns the
// tier's cache off.
type TierSettings struct {
	Concurrency   int           `env:"CONCURRENCY"`
	MaxAckPending int           `env:"MAX_ACK_PENDING"`
	AckWait       time.Duration `env:"ACK_WAIT"`
	// Chain is the tier's fallback chain, "provider:model,provider:model",
	// tried in order; empty: the resolved provider's model for the tier.
	Chain string `env:"CHAIN"`
	// Hedge asks the next target too once the first is past its observed
	// p95 (see router.Config.Hedge).
	Hedge    bool           `env:"HEDGE"`
	CacheTTL *time.Duration `env:"CACHE_TTL"`
}

// TierTable holds each tier's settings.
type TierTable struct {
	Fast      TierSettings `envPrefix:"NOESIS_FAST_"`
	Reasoning TierSettings `envPrefix:"NOESIS_REASONING_"`
	Deep      TierSettings `envPrefix:"NOESIS_DEEP_"`
}

// Of returns a tier's settings.
func (p *TierTable) Of(t pipeline.Tier) *TierSettings {
	switch t {
	case pipeline.TierReasoning:
		return &p.Reasoning
	case pipeline.TierDeep:
		return &p.Deep
	}
	return &p.Fast
}

// cacheTTL returns a tier's cache TTL: its setting, or the router's default.
func (c *Config) cacheTTL(t pipeline.Tier) time.Duration {
	if d := c.Tier.Of(t).CacheTTL; d != nil {
		return *d
	}
	return router.DefaultCacheTTL()[t]
}

// JudgeSettings are one judge's own settings, read for any judge by name:
// NOESIS_JUDGE_<NAME>_TIMEOUT and NOESIS_JUDGE_<NAME>_TARGET, the name in
// capitals without accents (DIKĒ: NOESIS_JUDGE_DIKE_TIMEOUT). They win over
// the same fields of NOESIS_JUDGES.
type JudgeSettings struct {
	// Timeout makes the judge abstain when its model takes longer on a try;
	// 0: the per-call timeout under the deadline. The origin used 3s, 10s, 3s.
	Timeout time.Duration
	// Target is the judge's own "provider:model", first in its chain: a
	// panel of different model families judges better (PoLL).
	Target string
}

// judgeKey is a judge's name as it stands in its variables: accents
// dropped (Unicode decomposition, then the combining marks removed: DIKĒ is
// DIKE), capitals, and any other character than a letter or digit an
// underscore.
func judgeKey(name string) string {
	plain, _, err := transform.String(transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn))), name)
	if err != nil {
		plain = name
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			return r
		}
		return '_'
	}, strings.ToUpper(plain))
}

// judgeVariables reads every NOESIS_JUDGE_<NAME>_TIMEOUT and _TARGET from
// env, by judge key. Which judges exist is known only once NOESIS_JUDGES is
// read, so they are gathered by shape and checked against the judges then.
func judgeVariables(env map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for name, v := range env {
		rest, ok := strings.CutPrefix(name, "NOESIS_JUDGE_")
		if !ok || strings.HasPrefix(rest, "BREAKER_") {
			continue
		}
		for _, field := range []string{"_TIMEOUT", "_TARGET"} {
			if key, ok := strings.CutSuffix(rest, field); ok && key != "" {
				if out[key] == nil {
					out[key] = map[string]string{}
				}
				out[key][field[1:]] = v
			}
		}
	}
	return out
}

// renamed maps the variables of earlier releases to their names now; Load
// still reads them, when the new name is not set, and says so.
var renamed = map[string]string{
	"NOESIS_CHAIN_FAST": "NOESIS_FAST_CHAIN", "NOESIS_CHAIN_REASONING": "NOESIS_REASONING_CHAIN", "NOESIS_CHAIN_DEEP": "NOESIS_DEEP_CHAIN",
	"NOESIS_HEDGE_FAST": "NOESIS_FAST_HEDGE", "NOESIS_HEDGE_REASONING": "NOESIS_REASONING_HEDGE", "NOESIS_HEDGE_DEEP": "NOESIS_DEEP_HEDGE",
	"NOESIS_CACHE_TTL_FAST": "NOESIS_FAST_CACHE_TTL", "NOESIS_CACHE_TTL_REASONING": "NOESIS_REASONING_CACHE_TTL", "NOESIS_CACHE_TTL_DEEP": "NOESIS_DEEP_CACHE_TTL",
	"NOESIS_JUDGE_TIMEOUT_VERITAS": "NOESIS_JUDGE_VERITAS_TIMEOUT", "NOESIS_JUDGE_TIMEOUT_SOPHIA": "NOESIS_JUDGE_SOPHIA_TIMEOUT", "NOESIS_JUDGE_TIMEOUT_DIKE": "NOESIS_JUDGE_DIKE_TIMEOUT",
	"NOESIS_JUDGE_TARGET_VERITAS": "NOESIS_JUDGE_VERITAS_TARGET", "NOESIS_JUDGE_TARGET_SOPHIA": "NOESIS_JUDGE_SOPHIA_TARGET", "NOESIS_JUDGE_TARGET_DIKE": "NOESIS_JUDGE_DIKE_TARGET",
}

// environment returns the process's environment with renamed variables
// under their new names, and the old names that were used.
func environment() (map[string]string, []string) {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	var used []string
	for old, now := range renamed {
		v, set := env[old]
		if !set {
			continue
		}
		used = append(used, old)
		if _, ok := env[now]; !ok {
			env[now] = v
		}
	}
	sort.Strings(used)
	return env, used
}

// Renamed returns the variables of earlier releases this config was read
// from, each with its name now, for a warning at start.
func (c *Config) Renamed() map[string]string {
	out := map[string]string{}
	for _, old := range c.renamedUsed {
		out[old] = renamed[old]
	}
	return out
}

// readJudgeSettings fills JudgeSettings from environ; what does not read is
// kept for Validate to report.
func (c *Config) readJudgeSettings(environ map[string]string) {
	for key, fields := range judgeVariables(environ) {
		js := JudgeSettings{Target: fields["TARGET"]}
		if v := fields["TIMEOUT"]; v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				if c.judgeErrors == nil {
					c.judgeErrors = map[string]string{}
				}
				c.judgeErrors["NOESIS_JUDGE_"+key+"_TIMEOUT"] = fmt.Sprintf("want a duration such as 3s, got %q", v)
			}
			js.Timeout = d
		}
		if js == (JudgeSettings{}) {
			continue // set but empty, as .env.example leaves them
		}
		if c.JudgeSettings == nil {
			c.JudgeSettings = map[string]JudgeSettings{}
		}
		c.JudgeSettings[key] = js
	}
}
