package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
)

// judgeTargets returns each judge's own target, where one is set.
func (c *Config) judgeTargets() map[string]targetRef {
	out := map[string]targetRef{}
	var specs []judgeSpec
	_ = json.Unmarshal([]byte(c.Judges), &specs) // validated by judges()
	for _, sp := range specs {
		if refs, _ := parseChain(sp.Target); len(refs) > 0 {
			out[sp.Name] = refs[0]
		}
	}
	judges := pipeline.DefaultJudges()
	for _, sp := range specs {
		judges = append(judges, pipeline.Judge{Name: sp.Name})
	}
	for _, j := range judges {
		if refs, _ := parseChain(c.JudgeSettings[judgeKey(j.Name)].Target); len(refs) > 0 {
			out[j.Name] = refs[0]
		}
	}
	return out
}

// Tribunal returns the tribunal's config.
func (c *Config) Tribunal() pipeline.TribunalConfig {
	judges, _ := c.judges() // validated with the config
	temp := float32(c.Temperature)
	return pipeline.TribunalConfig{Judges: judges, Deadline: c.TribunalDeadline, Temperature: &temp, MaxTokens: c.MaxTokens,
		Breaker: pipeline.BreakerConfig{Failures: c.BreakerFailures, Cooldown: c.BreakerCooldown, Successes: c.BreakerSuccesses}}
}

// judgeSpec is one judge of NOESIS_JUDGES.
type judgeSpec struct {
	Name    string  `json:"name"`
	Pillar  string  `json:"pillar"`
	Weight  float64 `json:"weight"`
	Charge  string  `json:"charge"`
	Timeout string  `json:"timeout"`
	Target  string  `json:"target"`
}

// judges returns the tribunal's judges: NOESIS_JUDGES, or the origin's three;
// with the per-judge timeout and target variables applied by name.
func (c *Config) judges() ([]pipeline.Judge, error) {
	judges := pipeline.DefaultJudges()
	targets := c.judgeTargets()
	if strings.TrimSpace(c.Judges) != "" {
		var specs []judgeSpec
		dec := json.NewDecoder(strings.NewReader(c.Judges))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&specs); err != nil {
			return nil, fmt.Errorf("want a JSON list of judges ({\"name\", \"pillar\", \"weight\", \"charge\"}): %v", err)
		}
		if len(specs) < 2 {
			return nil, fmt.Errorf("want at least two judges (fewer than two present is always review), got %d", len(specs))
		}
		judges = judges[:0]
		seen := map[string]bool{}
		for _, sp := range specs {
			switch {
			case sp.Name == "" || strings.ContainsAny(sp.Name, " .*>\t"):
				return nil, fmt.Errorf("judge %q: want a name without spaces, dots or wildcards", sp.Name)
			case seen[sp.Name]:
				return nil, fmt.Errorf("judge %q is listed twice", sp.Name)
			case sp.Weight <= 0 || sp.Pillar == "" || sp.Charge == "":
				return nil, fmt.Errorf("judge %s: want a positive weight, a pillar and a charge", sp.Name)
			}
			seen[sp.Name] = true
			j := pipeline.Judge{Name: sp.Name, Pillar: sp.Pillar, Weight: sp.Weight, Charge: sp.Charge}
			if sp.Timeout != "" {
				d, err := time.ParseDuration(sp.Timeout)
				if err != nil || d < 0 {
					return nil, fmt.Errorf("judge %s: timeout %q is not a duration", sp.Name, sp.Timeout)
				}
				j.Timeout = d
			}
			if sp.Target != "" {
				if refs, err := parseChain(sp.Target); err != nil || len(refs) != 1 {
					return nil, fmt.Errorf("judge %s: target %q: want one provider:model", sp.Name, sp.Target)
				}
			}
			judges = append(judges, j)
		}
	}
	named := map[string]bool{}
	for i := range judges {
		named[judgeKey(judges[i].Name)] = true
		if d := c.JudgeSettings[judgeKey(judges[i].Name)].Timeout; d > 0 {
			judges[i].Timeout = d
		}
		if r, ok := targets[judges[i].Name]; ok {
			judges[i].Target = r.name()
		}
	}
	for key := range c.JudgeSettings {
		if !named[key] {
			var names []string
			for _, j := range judges {
				names = append(names, judgeKey(j.Name))
			}
			return nil, fmt.Errorf("NOESIS_JUDGE_%s_*: no judge is named %s (judges: %s)", key, key, strings.Join(names, ", "))
		}
	}
	return judges, nil
}

// callBudget is NOESIS_CALL_BUDGET, or when 0 one call per judge and try,
// plus one, at least 10.
func (c *Config) callBudget() int {
	if c.CallBudget > 0 {
		return c.CallBudget
	}
	judges, _ := c.judges()
	return max(10, len(judges)*c.LLMAttempts+1)
}
