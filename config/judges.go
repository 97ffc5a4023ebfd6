package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/breaker"
)

// judgeTargets returns each judge's own target, where one is set.
func (c *Config) judgeTargets() map[string]targetRef {
	out := map[string]targetRef{}
	judges, _ := c.judges() // validated with the config
	for _, j := range judges {
		if refs, _ := parseChain(j.Target); len(refs) > 0 {
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
		Breaker: breaker.Config{Failures: c.BreakerFailures, Cooldown: c.BreakerCooldown, Successes: c.BreakerSuccesses}}
}

// judgeSpec is one entry of NOESIS_JUDGES: a change to the judge it names,
// a new judge, or the removal of one. Weight is a pointer so that an entry
// that does not give it leaves the judge's own.
type judgeSpec struct {
	Name    string   `json:"name"`
	Pillar  string   `json:"pillar"`
	Weight  *float64 `json:"weight"`
	Charge  string   `json:"charge"`
	Timeout string   `json:"timeout"`
	Target  string   `json:"target"`
	Remove  bool     `json:"remove"`
}

// judges returns the tribunal's judges: the origin's three
// (pipeline.DefaultJudges) with NOESIS_JUDGES merged onto them by name (see
// mergeJudges), then each judge's NOESIS_JUDGE_<NAME>_TIMEOUT and _TARGET.
// It fails when an entry does not read, when fewer than two judges are left,
// or when a per-judge variable names no judge.
func (c *Config) judges() ([]pipeline.Judge, error) {
	var specs []judgeSpec
	if strings.TrimSpace(c.Judges) != "" {
		dec := json.NewDecoder(strings.NewReader(c.Judges))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&specs); err != nil {
			return nil, fmt.Errorf("want a JSON list of judges by name ({\"name\", and any of \"pillar\", \"weight\", \"charge\", \"timeout\", \"target\", or \"remove\": true}): %v", err)
		}
	}
	judges, err := mergeJudges(pipeline.DefaultJudges(), specs)
	if err != nil {
		return nil, err
	}
	if len(judges) < 2 {
		return nil, fmt.Errorf("want at least two judges (fewer than two present is always review), got %d", len(judges))
	}
	named := map[string]bool{}
	for i := range judges {
		key := judgeKey(judges[i].Name)
		named[key] = true
		if d := c.JudgeSettings[key].Timeout; d > 0 {
			judges[i].Timeout = d
		}
		if refs, _ := parseChain(c.JudgeSettings[key].Target); len(refs) > 0 {
			judges[i].Target = refs[0].name()
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

// mergeJudges applies the entries of NOESIS_JUDGES to judges, by name (the
// name compared as its variables spell it: DIKE is DIKĒ):
//
//   - an entry naming a judge changes only the fields it gives; the judge
//     keeps its name as written in the defaults;
//   - an entry with a new name adds a judge, after the others, and must give
//     a pillar, a weight and a charge;
//   - {"name": "SOPHIA", "remove": true} removes a judge; it takes no other
//     field, and a name no judge has is refused (a misspelt removal would
//     otherwise leave the judge in).
//
// A weight must be positive. Weights are relative: they need not sum to 1,
// the consensus being the weighted mean over the judges that voted.
func mergeJudges(judges []pipeline.Judge, specs []judgeSpec) ([]pipeline.Judge, error) {
	removed := map[int]bool{}
	seen := map[string]bool{}
	for _, sp := range specs {
		key := judgeKey(sp.Name)
		switch {
		case sp.Name == "" || strings.ContainsAny(sp.Name, " .*>\t"):
			return nil, fmt.Errorf("judge %q: want a name without spaces, dots or wildcards", sp.Name)
		case seen[key]:
			return nil, fmt.Errorf("judge %q is listed twice", sp.Name)
		case sp.Weight != nil && !(*sp.Weight > 0 && !math.IsInf(*sp.Weight, 0)):
			return nil, fmt.Errorf("judge %s: want a positive weight, got %v (to remove a judge: {\"name\": %q, \"remove\": true})", sp.Name, *sp.Weight, sp.Name)
		}
		seen[key] = true
		i := judgeIndex(judges, key)
		if sp.Remove {
			if i < 0 {
				return nil, fmt.Errorf("judge %s: no judge of that name to remove (judges: %s)", sp.Name, judgeNames(judges))
			}
			if sp.Pillar != "" || sp.Weight != nil || sp.Charge != "" || sp.Timeout != "" || sp.Target != "" {
				return nil, fmt.Errorf("judge %s: a removal takes only the name", sp.Name)
			}
			removed[i] = true
			continue
		}
		if i < 0 {
			if sp.Weight == nil || sp.Pillar == "" || sp.Charge == "" {
				return nil, fmt.Errorf("judge %s is a new judge: want a positive weight, a pillar and a charge (judges by default: %s)", sp.Name, judgeNames(judges))
			}
			judges = append(judges, pipeline.Judge{Name: sp.Name})
			i = len(judges) - 1
		}
		if err := sp.apply(&judges[i]); err != nil {
			return nil, err
		}
	}
	kept := judges[:0]
	for i, j := range judges {
		if !removed[i] {
			kept = append(kept, j)
		}
	}
	return kept, nil
}

// apply sets the fields the entry gives on j.
func (sp judgeSpec) apply(j *pipeline.Judge) error {
	if sp.Pillar != "" {
		j.Pillar = sp.Pillar
	}
	if sp.Weight != nil {
		j.Weight = *sp.Weight
	}
	if sp.Charge != "" {
		j.Charge = sp.Charge
	}
	if sp.Timeout != "" {
		d, err := time.ParseDuration(sp.Timeout)
		if err != nil || d < 0 {
			return fmt.Errorf("judge %s: timeout %q is not a duration", sp.Name, sp.Timeout)
		}
		j.Timeout = d
	}
	if sp.Target != "" {
		refs, err := parseChain(sp.Target)
		if err != nil || len(refs) != 1 {
			return fmt.Errorf("judge %s: target %q: want one provider:model", sp.Name, sp.Target)
		}
		j.Target = refs[0].name()
	}
	return nil
}

func judgeIndex(judges []pipeline.Judge, key string) int {
	for i, j := range judges {
		if judgeKey(j.Name) == key {
			return i
		}
	}
	return -1
}

func judgeNames(judges []pipeline.Judge) string {
	names := make([]string, len(judges))
	for i, j := range judges {
		names[i] = j.Name
	}
	return strings.Join(names, ", ")
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
