package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue returns the value of the sample whose name and labels match
// exactly (labels in any order), or -1.
func metricValue(text, name string, labels map[string]string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{([^}]*)\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		got := map[string]string{}
		for _, kv := range strings.Split(m[1], ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				got[k] = strings.Trim(v, `"`)
			}
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if match {
			f, _ := strconv.ParseFloat(m[2], 64)
			return f
		}
	}
	return -1
}

// After an end-to-end run, /metrics counts what was sent.
func TestMetricsCountWhatWasSent(t *testing.T) {
	r := newRig(t, sim.Config{Shape: "tagged-lines"}) // no ambiguous answers: one parse error is counted
	r.cfg.MetricsAddr = "127.0.0.1:0"
	r.cfg.MaxDeliver = 1
	r.cfg.Prices = "meta-llama/Llama-3.3-70B-Instruct-fast=1000000/2000000" // $1 a token in, $2 out: easy to check
	svc := runService(t, r.cfg)
	base := "http://" + svc.MetricsAddr()
	if code, _ := scrape(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code, body := scrape(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d: %s", code, body)
	}
	got := collect(t, r.nc)
	const n = 20
	for i := 0; i < n; i++ {
		text := fmt.Sprintf("metrics thought %d", i)
		switch i {
		case 0:
			text += " sim:malformed@veritas"
		case 1:
			text += " sim:http=400@narrative"
		}
		th := thought(i, text)
		th.Content.Depth = 1
		publishThought(t, r.js, th)
	}
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": n - 1, "verdicts": n, "dlq.narrative": 1})
	// The counters follow each thought's ack: scrape until the last one shows.
	var text string
	published := map[string]string{"stage": "tribunal", "outcome": "published"}
	eventually(t, 10*time.Second, func() bool {
		_, text = scrape(t, base+"/metrics")
		return metricValue(text, "noesis_thoughts_total", published) == n &&
			metricValue(text, "noesis_thoughts_total", map[string]string{"stage": "narrative", "outcome": "dead_lettered"}) == 1
	}, func() string {
		return fmt.Sprintf("tribunal published %v of %d", metricValue(text, "noesis_thoughts_total", published), n)
	})
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"noesis_thoughts_total", map[string]string{"stage": "narrative", "outcome": "published"}, n - 1},
		{"noesis_thoughts_total", map[string]string{"stage": "narrative", "outcome": "dead_lettered"}, 1},
		{"noesis_thoughts_total", map[string]string{"stage": "tribunal", "outcome": "published"}, n},
		{"noesis_dead_letters_total", map[string]string{"stage": "narrative"}, 1},
		{"noesis_judge_abstentions_total", map[string]string{"judge": "VERITAS", "kind": "answer"}, 1},
		{"noesis_model_errors_total", map[string]string{"tier": "reasoning", "class": "parse"}, 1},
		{"noesis_model_errors_total", map[string]string{"tier": "fast", "class": "request"}, 1}, // a 400: the request's, not the target's
		// Three judges a thought, and VERITAS asked once more for a readable answer.
		{"noesis_model_call_duration_seconds_count", map[string]string{"tier": "reasoning", "outcome": "ok"}, 3*n + 1},
		{"noesis_cache_requests_total", map[string]string{"tier": "reasoning", "result": "miss"}, 3*n + 1},
		{"noesis_model_calls_in_flight", map[string]string{"tier": "reasoning"}, 0},
	}
	for _, c := range checks {
		if got := metricValue(text, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The only worker: it shares its answers with nobody.
	eventually(t, 10*time.Second, func() bool {
		_, alone := scrape(t, base+"/metrics")
		return strings.Contains(alone, "\nnoesis_cache_alone 1\n") // no labels
	}, func() string { return "noesis_cache_alone never 1 for the only worker" })
	for _, stage := range []string{"narrative", "tribunal"} {
		if limit := metricValue(text, "noesis_pool_concurrency_limit", map[string]string{"stage": stage}); limit < 4 {
			t.Errorf("noesis_pool_concurrency_limit{stage=%s} = %v, want the adaptive limit (at least 4)", stage, limit)
		}
	}
	var decisions float64
	for _, d := range []pipeline.Decision{pipeline.DecisionPass, pipeline.DecisionReview, pipeline.DecisionFail, pipeline.DecisionCapital, pipeline.DecisionUnavailable} {
		if v := metricValue(text, "noesis_tribunal_decisions_total", map[string]string{"decision": string(d)}); v > 0 {
			decisions += v
		}
	}
	if decisions != n {
		t.Errorf("decisions sum to %v, want %d", decisions, n)
	}
	in := metricValue(text, "noesis_model_tokens_total", map[string]string{"tier": "fast", "direction": "in"})
	out := metricValue(text, "noesis_model_tokens_total", map[string]string{"tier": "fast", "direction": "out"})
	if in <= 0 || out <= 0 {
		t.Errorf("tokens in %v, out %v", in, out)
	}
	if cost := metricValue(text, "noesis_model_cost_usd_total", map[string]string{"tier": "fast"}); cost != in+2*out {
		t.Errorf("cost %v, want %v (tokens in + 2 x tokens out)", cost, in+2*out)
	}
	if v := metricValue(text, "noesis_model_cost_usd_total", map[string]string{"tier": "reasoning"}); v != -1 {
		t.Errorf("an unpriced model cost %v", v)
	}
}
