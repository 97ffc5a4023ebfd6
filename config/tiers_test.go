package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/pipeline"
)

// A tier's settings sit under its prefix; an unset cache TTL is the router's
// default for the tier, and 0 turns the tier's cache off.
func TestTierSettingsUnderTheTiersPrefix(t *testing.T) {
	t.Setenv("NOESIS_REASONING_CHAIN", "sim:a,sim:b")
	t.Setenv("NOESIS_DEEP_HEDGE", "true")
	t.Setenv("NOESIS_FAST_CACHE_TTL", "0s")
	c, err := config.Load("", false)
	if err != nil {
		t.Fatal(err)
	}
	rc := c.Router("http://127.0.0.1:1/v1")
	if got := rc.Tiers[pipeline.TierReasoning]; len(got) != 2 || got[0] != "sim:a" || got[1] != "sim:b" {
		t.Errorf("reasoning chain %v, want sim:a, sim:b", got)
	}
	if !rc.Hedge[pipeline.TierDeep] || rc.Hedge[pipeline.TierFast] {
		t.Errorf("hedge %v, want deep only", rc.Hedge)
	}
	ttl := c.Cache().TTL
	if ttl[pipeline.TierFast] != 0 || ttl[pipeline.TierReasoning] != 5*time.Minute || ttl[pipeline.TierDeep] != 30*time.Minute {
		t.Errorf("cache TTLs %v, want fast off, reasoning 5m, deep 30m", ttl)
	}
	if len(c.Renamed()) != 0 {
		t.Errorf("renamed %v, want none", c.Renamed())
	}
}

// The names of earlier releases are still read, the new name wins, and the
// config says which old names it read.
func TestRenamedVariablesStillRead(t *testing.T) {
	t.Setenv("NOESIS_CHAIN_FAST", "sim:old")
	t.Setenv("NOESIS_CACHE_TTL_DEEP", "2m")
	t.Setenv("NOESIS_DEEP_CACHE_TTL", "3m")
	t.Setenv("NOESIS_JUDGE_TIMEOUT_SOPHIA", "10s")
	c, err := config.Load("", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Router("http://127.0.0.1:1/v1").Tiers[pipeline.TierFast]; len(got) != 1 || got[0] != "sim:old" {
		t.Errorf("fast chain %v, want the old variable's sim:old", got)
	}
	if d := c.Cache().TTL[pipeline.TierDeep]; d != 3*time.Minute {
		t.Errorf("deep TTL %s, want the new name's 3m", d)
	}
	for _, j := range c.Tribunal().Judges {
		if j.Name == "SOPHIA" && j.Timeout != 10*time.Second {
			t.Errorf("SOPHIA's timeout %s, want 10s", j.Timeout)
		}
	}
	r := c.Renamed()
	if len(r) != 3 || r["NOESIS_CHAIN_FAST"] != "NOESIS_FAST_CHAIN" || r["NOESIS_JUDGE_TIMEOUT_SOPHIA"] != "NOESIS_JUDGE_SOPHIA_TIMEOUT" {
		t.Errorf("renamed %v", r)
	}
}

// Per-judge variables work for any judge by name, a fourth one too, with
// the name in capitals and without accents; a name no judge has is refused.
func TestJudgeVariablesByName(t *testing.T) {
	t.Setenv("NOESIS_JUDGES", `[{"name":"VERITAS","pillar":"truth","weight":0.4,"charge":"c"},{"name":"DIKĒ","pillar":"justice","weight":0.3,"charge":"c"},{"name":"SOPHIA","remove":true},{"name":"Athena","pillar":"prudence","weight":0.3,"charge":"c","timeout":"4s"}]`)
	t.Setenv("NOESIS_JUDGE_ATHENA_TIMEOUT", "20s")
	t.Setenv("NOESIS_JUDGE_ATHENA_TARGET", "sim:athena-model")
	t.Setenv("NOESIS_JUDGE_DIKE_TIMEOUT", "3s")
	c, err := config.Load("", false)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]pipeline.Judge{}
	for _, j := range c.Tribunal().Judges {
		got[j.Name] = j
	}
	if a := got["Athena"]; a.Timeout != 20*time.Second || a.Target != "sim:athena-model" {
		t.Errorf("Athena %+v, want the variables' 20s and sim:athena-model over the list's 4s", a)
	}
	if d := got["DIKĒ"]; d.Timeout != 3*time.Second {
		t.Errorf("DIKĒ %+v, want 3s from NOESIS_JUDGE_DIKE_TIMEOUT", d)
	}
	if v := got["VERITAS"]; v.Timeout != 0 || v.Target != "" {
		t.Errorf("VERITAS %+v, want nothing of its own", v)
	}

	t.Setenv("NOESIS_JUDGE_SOPHIA_TIMEOUT", "5s") // SOPHIA is not on this tribunal
	if _, err := config.Load("", false); err == nil || !strings.Contains(err.Error(), "no judge is named SOPHIA") {
		t.Errorf("err = %v, want a refusal naming SOPHIA", err)
	}
	t.Setenv("NOESIS_JUDGE_SOPHIA_TIMEOUT", "")
	t.Setenv("NOESIS_JUDGE_ATHENA_TIMEOUT", "soon")
	if _, err := config.Load("", false); err == nil || !strings.Contains(err.Error(), "NOESIS_JUDGE_ATHENA_TIMEOUT: want a duration") {
		t.Errorf("err = %v, want NOESIS_JUDGE_ATHENA_TIMEOUT refused", err)
	}
}
