// Package deploy_test checks the deployment files against the code, so they
// cannot drift apart: the NATS chart values grant what nats-auth.conf grants,
// the chart and the compose file set only settings noesis has, and the
// chart's tiers pull from their own stage consumers. (helm lint, helm template
// | kubeconform -strict and the Compose parser run in CI: .ci/deploy-check.sh.)
package deploy_test

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/conf"
	"sigs.k8s.io/yaml"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/pipeline"
)

func TestNATSValuesGrantWhatNatsAuthConfGrants(t *testing.T) {
	for _, v := range []string{"NOESIS_WORKER_PASSWORD", "NOESIS_ADMIN_PASSWORD", "NOESIS_AGENT_PASSWORD", "NOESIS_REVIEWER_PASSWORD"} {
		t.Setenv(v, "x")
	}
	parsed, err := conf.ParseFile("../../nats-auth.conf")
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	readYAML(t, "nats-values.yaml", &values)
	if dig(t, values, "config", "jetstream", "enabled") != true || dig(t, values, "config", "monitor", "enabled") != true {
		t.Error("nats-values.yaml must enable JetStream and the monitoring endpoint (KEDA reads lag there)")
	}
	for _, acc := range []struct {
		name  string
		users []string
		links string // exports or imports
	}{{"NOESIS", []string{"worker", "admin"}, "exports"}, {"daimon-1", []string{"daimon-1"}, "imports"}} {
		inConf := parsed["accounts"].(map[string]any)[acc.name]
		inValues := dig(t, values, "config", "merge", "accounts", acc.name)
		fromConf, fromValues := usersOf(t, inConf), usersOf(t, inValues)
		for _, user := range acc.users {
			c, ok1 := fromConf[user]
			v, ok2 := fromValues[user]
			if !ok1 || !ok2 {
				t.Errorf("user %s: in nats-auth.conf %v, in nats-values.yaml %v", user, ok1, ok2)
				continue
			}
			if !reflect.DeepEqual(c, v) {
				t.Errorf("user %s's permissions differ:\n nats-auth.conf:   %v\n nats-values.yaml: %v", user, c, v)
			}
		}
		c, v := normal(inConf.(map[string]any)[acc.links]), normal(inValues.(map[string]any)[acc.links])
		if !reflect.DeepEqual(c, v) || c == nil {
			t.Errorf("account %s's %s differ:\n nats-auth.conf:   %v\n nats-values.yaml: %v", acc.name, acc.links, c, v)
		}
		if jc, jv := normal(inConf.(map[string]any)["jetstream"]), normal(inValues.(map[string]any)["jetstream"]); !reflect.DeepEqual(jc, jv) {
			t.Errorf("account %s's JetStream limits differ:\n nats-auth.conf:   %v\n nats-values.yaml: %v", acc.name, jc, jv)
		}
	}
}

// normal is v with every number as a float64 and the chart's raw << tokens >>
// read as the NATS config reads them, so values parsed from the NATS config
// and from YAML compare equal.
func normal(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = normal(e)
		}
		return out
	case []any:
		out := []any{}
		for _, e := range x {
			out = append(out, normal(e))
		}
		return out
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case string:
		// The chart's << token >> is a NATS config token, written as is.
		if raw, ok := strings.CutPrefix(x, "<< "); ok {
			if p, err := conf.Parse("v: " + strings.TrimSuffix(raw, " >>")); err == nil {
				return normal(p["v"])
			}
		}
	}
	return v
}

// usersOf maps each user of an account to its permissions, as sorted lists
// under "publish.allow", "publish.deny", "subscribe.allow".
func usersOf(t *testing.T, account any) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	users, _ := account.(map[string]any)["users"].([]any)
	for _, u := range users {
		um := u.(map[string]any)
		name, _ := um["user"].(string)
		perms := map[string][]string{}
		pm, _ := um["permissions"].(map[string]any)
		for _, dir := range []string{"publish", "subscribe"} {
			switch p := pm[dir].(type) {
			case string:
				perms[dir+".allow"] = []string{p}
			case map[string]any:
				for _, kind := range []string{"allow", "deny"} {
					if list := strs(p[kind]); len(list) > 0 {
						perms[dir+"."+kind] = list
					}
				}
			}
		}
		out[name] = perms
	}
	if len(out) == 0 {
		t.Fatal("no users found")
	}
	return out
}

var (
	envName  = regexp.MustCompile(`- name: ([A-Z0-9_{}$ ]+)\n`)
	tierName = regexp.MustCompile(`\{\{ \$TIER \}\}`)
)

// Every setting the chart and the compose file give noesis is one it reads.
func TestDeploymentSettingsExist(t *testing.T) {
	known := map[string]bool{"GOMEMLIMIT": true} // Go's own
	for _, name := range config.Names() {
		known[name] = true
	}
	tmpl, err := os.ReadFile("helm/noesis/templates/deployments.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range envName.FindAllStringSubmatch(string(tmpl), -1) {
		for _, tier := range []string{"FAST", "REASONING", "DEEP"} {
			names = append(names, tierName.ReplaceAllString(m[1], tier))
		}
	}
	var values map[string]any
	readYAML(t, "helm/noesis/values.yaml", &values)
	for k := range dig(t, values, "env").(map[string]any) {
		names = append(names, k)
	}
	var compose map[string]any
	readYAML(t, "compose/compose.yaml", &compose)
	for k := range dig(t, compose, "x-worker", "environment").(map[string]any) {
		names = append(names, k)
	}
	if len(names) < 10 {
		t.Fatalf("found only %d settings: is the pattern stale?", len(names))
	}
	for _, n := range names {
		if !known[n] {
			t.Errorf("the deployment files set %s, which noesis does not read", n)
		}
	}
}

// Each tier of the chart scales on its own stage's consumer.
func TestChartTiersPullTheirStages(t *testing.T) {
	var values map[string]any
	readYAML(t, "helm/noesis/values.yaml", &values)
	tiers := dig(t, values, "tiers").(map[string]any)
	for _, tier := range []pipeline.Tier{pipeline.TierFast, pipeline.TierReasoning, pipeline.TierDeep} {
		tv, ok := tiers[string(tier)].(map[string]any)
		if !ok {
			t.Errorf("values.yaml has no tier %s", tier)
			continue
		}
		want, _ := pipeline.StageForTier(tier)
		if tv["stage"] != string(want) {
			t.Errorf("tier %s: stage %v, want %s", tier, tv["stage"], want)
		}
		as := tv["autoscaling"].(map[string]any)
		if as["lagThreshold"] != tv["concurrency"] {
			t.Errorf("tier %s: lagThreshold %v differs from concurrency %v (docs/deploy/README.md: one worker's slots)", tier, as["lagThreshold"], tv["concurrency"])
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func dig(t *testing.T, m map[string]any, keys ...string) any {
	t.Helper()
	var cur any = m
	for _, k := range keys {
		cm, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("no %s in %v", k, keys)
		}
		cur = cm[k]
	}
	return cur
}

func strs(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		out = []string{x}
	case []any:
		for _, e := range x {
			out = append(out, e.(string))
		}
	}
	slices.Sort(out)
	return out
}
