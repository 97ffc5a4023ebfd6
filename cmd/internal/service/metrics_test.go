package service

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Every metric the shipped Grafana dashboard queries is one noesis exports.
func TestGrafanaDashboardUsesExportedMetrics(t *testing.T) {
	b, err := os.ReadFile("../../../docs/grafana-noesis.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	cache, err := router.NewCache(router.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	// Vectors without samples are not gathered: give each a sample.
	m := newMetrics(cache, pipeline.DefaultJudges())
	m.CallFinished("fast", router.Target{}, 0, pipeline.Usage{}, 0, errors.New("x"))
	m.CallStarted("fast", router.Target{})
	m.Handled("narrative", "dead_lettered", 2, &pipeline.Verdict{Judges: []pipeline.JudgeVote{{Abstained: true}}})
	m.Handled("tribunal", "published", 1, &pipeline.Verdict{Decision: "pass", Judges: []pipeline.JudgeVote{{Name: "V", Abstained: true}}})
	for _, g := range []*prometheus.GaugeVec{m.pending, m.ackPending, m.redeliverQ, m.waiting} {
		g.WithLabelValues("narrative").Set(0)
	}
	pool, err := consumers.NewPool(nil, consumers.PoolConfig{Stage: pipeline.StageNarrative}, func(context.Context, pipeline.Thought) (pipeline.Output, error) { return nil, nil }, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	m.watchPool(pipeline.StageNarrative, pool)
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
	}
	re := regexp.MustCompile(`noesis_[a-z_]+`)
	if len(dash.Panels) == 0 {
		t.Fatal("no panels")
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range re.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
				if !exported[name] && !exported[base] {
					t.Errorf("panel %q queries %s, which noesis does not export", p.Title, name)
				}
			}
		}
	}
}

// Known label values are exported at zero before their first event, and a
// call's cost (GPU time on Modal included) is the router's own estimate.
func TestMetricsStartAtZeroAndCountTheRoutersCost(t *testing.T) {
	m := newMetrics(nil, pipeline.DefaultJudges())
	m.CallFinished(pipeline.TierDeep, router.Target{Provider: "modal", Model: "m"}, time.Second, pipeline.Usage{}, 0.0125, nil)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"noesis_dead_letters_total", map[string]string{"stage": "analysis"}, 0},
		{"noesis_thoughts_total", map[string]string{"stage": "tribunal", "outcome": "rate_limit_wait"}, 0},
		{"noesis_tribunal_decisions_total", map[string]string{"decision": "unavailable"}, 0},
		{"noesis_judge_abstentions_total", map[string]string{"judge": "DIKĒ", "kind": "operational"}, 0},
		{"noesis_model_cost_usd_total", map[string]string{"provider": "modal", "tier": "deep"}, 0.0125},
	} {
		if got := gathered(t, m, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// gathered returns the value of the counter named name whose labels include
// labels, as the registry gathers it, or -1 when it has no such sample.
func gathered(t *testing.T, m *metrics, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	samples:
		for _, s := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range s.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue samples
				}
			}
			return s.GetCounter().GetValue()
		}
	}
	return -1
}
