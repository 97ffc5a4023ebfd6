package pipeline

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// summariseOracle is summarise as it was written first, with fmt-free
// concatenations, a map of ranks and a sort of every field: the test's
// reference for the faster one.
func summariseOracle(v *Verdict) {
	rank := map[Offense]int{OffenseNone: 0, "": 0, OffenseMinor: 1, OffenseMajor: 2, OffenseCapital: 3}
	v.OffenseLevel = OffenseNone
	var models, providers, targets, votes []string
	cached := true
	for _, j := range v.Judges {
		if j.Abstained {
			v.AbstentionCount++
			votes = append(votes, j.Name+" abstained ("+j.AbstainKind+")")
		} else {
			votes = append(votes, j.Name+" "+string(j.Verdict)+" "+strconv.FormatFloat(j.Confidence, 'f', 2, 64))
		}
		if !j.Abstained && rank[j.Offense] > rank[v.OffenseLevel] {
			v.OffenseLevel = j.Offense
		}
		if j.Model != "" {
			models, providers, targets = append(models, j.Model), append(providers, j.Provider), append(targets, j.Target)
		}
		v.Fallback = v.Fallback || j.Fallback
		v.ColdStart = v.ColdStart || j.ColdStart
		v.Hedged = v.Hedged || j.Hedged
		v.CostUSD += j.CostUSD
		cached = cached && j.Cached
		v.Usage = v.Usage.Add(j.Usage)
	}
	join := func(xs []string) string { slices.Sort(xs); return strings.Join(slices.Compact(xs), ",") }
	v.Model, v.Provider, v.Target = join(models), join(providers), join(targets)
	v.Cached = cached
	v.Reasoning = strings.Join(votes, "; ")
	v.RequiresHumanReview = v.Decision != DecisionPass && v.Decision != DecisionFail
}

// summarise fills a verdict's derived fields as the oracle does, over
// random panels of judges: agreeing or not on their models, providers and
// targets, abstaining or not, with offenses the ranks know and one they do
// not.
func TestSummariseAsTheOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	for range 2000 {
		var judges []JudgeVote
		for range r.IntN(5) {
			judges = append(judges, JudgeVote{Name: pick("VERITAS", "SOPHIA", "DIKĒ", ""), Verdict: Vote(pick("PASS", "FAIL", "REVIEW", "ABSTAIN")),
				Confidence: r.Float64(), Offense: Offense(pick("none", "minor", "major", "capital", "", "odd")), Abstained: r.IntN(4) == 0,
				AbstainKind: pick(AbstainOperational, AbstainAnswer), Model: pick("r1", "r1", "qwen", ""), Provider: pick("nebius", "modal"),
				Target: pick("primary", "fallback"), Cached: r.IntN(3) > 0, Fallback: r.IntN(5) == 0, ColdStart: r.IntN(5) == 0, Hedged: r.IntN(5) == 0,
				CostUSD: r.Float64() / 100, Usage: Usage{PromptTokens: r.IntN(900), CompletionTokens: r.IntN(900), TotalTokens: r.IntN(1800)}})
		}
		decision := Decision(pick("pass", "fail", "review"))
		got := &Verdict{Decision: decision, Judges: slices.Clone(judges)}
		want := &Verdict{Decision: decision, Judges: slices.Clone(judges)}
		got.summarise()
		summariseOracle(want)
		if g, w := *got, *want; g.Reasoning != w.Reasoning || g.OffenseLevel != w.OffenseLevel || g.AbstentionCount != w.AbstentionCount ||
			g.Model != w.Model || g.Provider != w.Provider || g.Target != w.Target || g.Cached != w.Cached || g.Fallback != w.Fallback ||
			g.ColdStart != w.ColdStart || g.Hedged != w.Hedged || g.CostUSD != w.CostUSD || g.Usage != w.Usage || g.RequiresHumanReview != w.RequiresHumanReview {
			t.Fatalf("judges %+v:\nsummarise %+v\noracle    %+v", judges, g, w)
		}
	}
}
