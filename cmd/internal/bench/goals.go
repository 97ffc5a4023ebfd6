package bench

import (
	"fmt"
	"io"
	"strconv"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
)

// Goal is one of issue 10's goals measured in a run, beside one floor: what
// the same work costs with noesis taken out, measured in the same run on the
// same machine. Only a floor from the same run is comparable: the machine's
// speed moves between runs.
type Goal struct {
	Goal   string  `json:"goal"`
	Want   float64 `json:"want"`
	Unit   string  `json:"unit"` // ms, MB or thoughts/s
	Noesis float64 `json:"noesis"`
	Met    bool    `json:"met"`
	// Floor names the floor ("" when none was measured in this run); AtFloor
	// is its figure, Ratio noesis's over it (a latency or memory: how many
	// times the floor's; a throughput: the share of the floor's), and
	// FloorMeets whether the floor itself meets the goal (when it does not,
	// no worker on this machine can).
	Floor      string  `json:"floor,omitempty"`
	AtFloor    float64 `json:"at_floor,omitempty"`
	Ratio      float64 `json:"noesis_over_floor,omitempty"`
	FloorMeets bool    `json:"floor_meets_goal"`
}

// keepsUp is the share of the offered rate a run that keeps up carries.
// Throughput runs from the first publish to the last output, so even a
// worker with room to spare carries a little less than it is offered: its
// last output comes one latency after the last publish. At 1,000 thoughts/s
// for 5,000 thoughts, 99 % leaves that tail 50 ms (50 thoughts behind); a
// worker that cannot keep up falls further behind the longer it runs.
const keepsUp = 0.99

// goalFloor is a floor's figure for a goal.
type goalFloor struct {
	name  string
	value float64
}

// goals lists the goals r's mode measures, each beside every floor the run
// measured for it.
func goals(r *PipelineFigures) []Goal {
	var out []Goal
	add := func(goal, unit string, want, noesis float64, higher bool, floors ...goalFloor) {
		met := func(v float64) bool { return (higher && v >= want) || (!higher && v > 0 && v <= want) }
		g := Goal{Goal: goal, Want: want, Unit: unit, Noesis: noesis, Met: met(noesis)}
		measured := false
		for _, f := range floors {
			if f.value <= 0 {
				continue
			}
			measured = true
			g.Floor, g.AtFloor, g.Ratio, g.FloorMeets = f.name, f.value, noesis/f.value, met(f.value)
			out = append(out, g)
		}
		if !measured {
			out = append(out, g)
		}
	}
	js, client := floorOf(r.Floor), floorOf(r.ClientFloor)
	const jsName, clientName, cachedName = "JetStream floor", "client floor (go-openai alone)", "client floor with the answer cache"
	switch r.Mode {
	case "seed":
		add("verdict p99", "ms", 2200, stageOf(r.Stages, "tribunal").P99ms, false, goalFloor{clientName, stageOf(client.Stages, "tribunal").P99ms})
		if r.AnsweredOnce != nil {
			add("verdict p99, judges asked once", "ms", 2200, r.AnsweredOnce.P99ms, false, goalFloor{clientName, stageOf(client.Stages, "tribunal").P99ms})
		}
		add("worker peak RSS", "MB", 300, r.PeakRSSMB, false, goalFloor{clientName, client.PeakRSSMB})
		if client.PeakRSSMB > 0 { // issue 21: 1.25 x go-openai alone with the same calls in flight
			// Beside go-openai alone, the same calls keeping their answers in
			// noesis's answer cache: whether the goal is above that floor.
			add("worker peak RSS <= 1.25 x the client floor's", "MB", 1.25*client.PeakRSSMB, r.PeakRSSMB, false, goalFloor{clientName, client.PeakRSSMB},
				goalFloor{cachedName, floorOf(r.CachedClientFloor).PeakRSSMB})
		}
		if r.IdealDrainS > 0 { // a burst against a provider that generates so many answers at once
			drained := func(seconds float64, received int) float64 { // 0 (not met) unless every thought had both outputs
				if received < r.Thoughts {
					return 0
				}
				return seconds
			}
			add("burst drained within 1.25 x the provider's ideal", "s", 1.25*r.IdealDrainS, drained(r.Seconds, r.Both.Received), false,
				goalFloor{"the provider's ideal", r.IdealDrainS}, goalFloor{clientName, drained(client.Seconds, client.Both.Received)})
		}
	case "zero":
		for _, p := range []struct {
			name string
			want float64
			of   func(StageFigures) float64
		}{{"both outputs p50", 1.0, func(s StageFigures) float64 { return s.P50ms }}, {"both outputs p99", 4.0, func(s StageFigures) float64 { return s.P99ms }}} {
			add(p.name, "ms", p.want, p.of(r.Both), false, goalFloor{jsName, p.of(js.Both)}, goalFloor{clientName, p.of(client.Both)})
		}
		if r.OfferedRate > 0 { // within 1 %: the last output always comes a latency after the last publish
			add("keeps up with the offered rate (>= 99 %)", "thoughts/s", keepsUp*r.OfferedRate, r.Throughput, true, goalFloor{jsName, js.Throughput}, goalFloor{clientName, client.Throughput})
		} else if client.Throughput > 0 { // issue 21: 70 % of what go-openai alone carries
			add("throughput >= 70 % of the client floor's", "thoughts/s", 0.7*client.Throughput, r.Throughput, true, goalFloor{clientName, client.Throughput})
		}
	case "cache":
		add("cache hits", "thoughts/s", 20000, r.Throughput, true, goalFloor{jsName, js.Throughput})
		if js.Throughput > 0 { // issue 21: 80 % of the JetStream work alone
			add("cache hits >= 80 % of the JetStream floor's", "thoughts/s", 0.8*js.Throughput, r.Throughput, true, goalFloor{jsName, js.Throughput})
		}
	}
	return out
}

// floorOf is f, or an empty floor when it was not run.
func floorOf(f *FloorFigures) FloorFigures {
	if f == nil {
		return FloorFigures{}
	}
	return *f
}

// stageOf is the figures of the named stage in stages.
func stageOf(stages []StageFigures, name string) StageFigures {
	for _, s := range stages {
		if s.Stage == name {
			return s
		}
	}
	return StageFigures{}
}

// writeGoals prints each goal beside its floor, noesis's figure as a ratio of it.
func writeGoals(w io.Writer, gs []Goal) error {
	if len(gs) == 0 {
		return nil
	}
	fmt.Fprintln(w, "goals beside their floors (measured in this run):")
	t := cli.Table(w)
	t.Header([]string{"goal", "want", "noesis", "met", "floor", "at the floor", "noesis / floor", "floor meets it"})
	for _, g := range gs {
		want := "<= " + f1(g.Want)
		if g.Unit == "thoughts/s" {
			want = ">= " + f0(g.Want)
		}
		row := []string{g.Goal, want + " " + g.Unit, f1(g.Noesis), yesNo(g.Met), "not measured in this run", "", "", ""}
		if g.Floor != "" {
			row[4], row[5], row[6], row[7] = g.Floor, f1(g.AtFloor), strconv.FormatFloat(g.Ratio, 'f', 2, 64)+" x", yesNo(g.FloorMeets)
		}
		_ = t.Append(row)
	}
	return t.Render()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func writePipelineFigures(w io.Writer, r *PipelineFigures) error {
	fmt.Fprintf(w, "mode %s: %d thoughts, offered %s, %d worker process(es), concurrency %s per pool, HTTP/%s, limits at the end %v\n", r.Mode, r.Thoughts, rateText(r.OfferedRate), r.Workers, concText(r.Concurrency), r.HTTP, r.Limits)
	t := cli.Table(w)
	t.Header([]string{"end to end", "received", "p50 ms", "p95 ms", "p99 ms", "max ms"})
	rows := append(append([]StageFigures{}, r.Stages...), r.Both)
	if r.AnsweredOnce != nil {
		rows = append(rows, *r.AnsweredOnce)
	}
	rows = append(rows, r.TribunalSplit...)
	if r.Sequential != nil {
		rows = append(rows, *r.Sequential)
	}
	for _, s := range rows {
		_ = t.Append([]string{s.Stage, strconv.Itoa(s.Received), f1(s.P50ms), f1(s.P95ms), f1(s.P99ms), f1(s.MaxMs)})
	}
	if err := t.Render(); err != nil {
		return err
	}
	fmt.Fprintf(w, "throughput: %.0f thoughts/s with both outputs (%.2f s from first publish to last output; longest pause between outputs %.0f ms)\n", r.Throughput, r.Seconds, r.LongestPauseMs)
	if v := r.WarmupVerdicts; v != nil {
		fmt.Fprintf(w, "warm-up: %d thoughts before these, left out of the figures; their verdicts (a cold start): p50 %.1f, p99 %.1f, max %.1f ms\n",
			r.WarmupThoughts, v.P50ms, v.P99ms, v.MaxMs)
	}
	fmt.Fprintf(w, "upstream calls: %d; verdicts with a judge asked again (an unreadable first answer): %d; peak RSS per worker process: %v MB\n",
		r.UpstreamCalls, r.AskedAgain, roundAll(r.WorkerRSSMB))
	if r.MachineBusyPct > 0 {
		fmt.Fprintf(w, "processors: the machine's %.0f%% busy from the first measured publish to the last output (every process: NATS, the simulator, the load, the worker)", r.MachineBusyPct)
		if r.WorkerCPUUs > 0 {
			fmt.Fprintf(w, "; the worker's processor %.0f us a thought", r.WorkerCPUUs)
		}
		for _, fl := range []struct {
			name string
			f    *FloorFigures
		}{{"the JetStream floor's run", r.Floor}, {"the client floor's run", r.ClientFloor}, {"the cached client floor's run", r.CachedClientFloor}} {
			if fl.f != nil && fl.f.MachineBusyPct > 0 {
				fmt.Fprintf(w, "; %s %.0f%% busy", fl.name, fl.f.MachineBusyPct)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "deliveries per stage consumer: %v for %d thoughts; dead letters %d", r.Deliveries, r.Thoughts, r.DeadLetters)
	if r.ProviderCapacity > 0 {
		fmt.Fprintf(w, "; the provider generates %d answers at once per model and queues the rest", r.ProviderCapacity)
	}
	if r.ProviderRPS > 0 {
		fmt.Fprintf(w, "; provider quota %g requests/s per model, %d calls answered 429", r.ProviderRPS, r.RateLimited)
	}
	fmt.Fprintln(w)
	if r.NotDelivered > 0 {
		fmt.Fprintf(w, "NOT DELIVERED within the wait: %d outputs\n", r.NotDelivered)
	}
	if fl := r.Floor; fl != nil {
		fmt.Fprintf(w, "JetStream floor (the same thoughts through a worker that only pulls, publishes outputs of noesis's sizes, %d B verdicts each after a %d B transcript and %d B narratives, and acks): %.0f thoughts/s, both outputs p50 %.1f ms, p99 %.1f ms; noesis = %.0f%% of its throughput\n",
			fl.VerdictBytes, fl.TranscriptBytes, fl.NarrativeBytes, fl.Throughput, fl.Both.P50ms, fl.Both.P99ms, 100*r.RatioToFloor)
	}
	for _, fl := range []struct {
		name string
		f    *FloorFigures
	}{{"JetStream floor", r.Floor}, {"client floor", r.ClientFloor}, {"client floor with the answer cache", r.CachedClientFloor}} {
		if fl.f != nil && fl.f.Both.Received < r.Thoughts {
			fmt.Fprintf(w, "%s: only %d of %d thoughts had both outputs within the wait: its figures are not a floor\n", fl.name, fl.f.Both.Received, r.Thoughts)
		}
	}
	if fl := r.ClientFloor; fl != nil {
		fmt.Fprintf(w, "client floor (the same worker making noesis's model calls with go-openai alone): %.0f thoughts/s, verdicts p50 %.1f ms, p99 %.1f ms, both outputs p50 %.1f ms, p99 %.1f ms; longest pause %.0f ms",
			fl.Throughput, stageOf(fl.Stages, "tribunal").P50ms, stageOf(fl.Stages, "tribunal").P99ms, fl.Both.P50ms, fl.Both.P99ms, fl.LongestPauseMs)
		if fl.PeakRSSMB > 0 {
			fmt.Fprintf(w, "; its worker process's peak RSS %.0f MB", fl.PeakRSSMB)
		}
		fmt.Fprintln(w)
	}
	if fl := r.CachedClientFloor; fl != nil {
		fmt.Fprintf(w, "client floor with the answer cache (the same, keeping each answer in noesis's answer cache, after the worker's warm-up): verdicts p50 %.1f ms, p99 %.1f ms",
			stageOf(fl.Stages, "tribunal").P50ms, stageOf(fl.Stages, "tribunal").P99ms)
		if fl.PeakRSSMB > 0 {
			fmt.Fprintf(w, "; its worker process's peak RSS %.0f MB", fl.PeakRSSMB)
		}
		fmt.Fprintln(w)
	}
	if fl := r.Floor; fl != nil {
		fmt.Fprintf(w, "JetStream floor: %.0f thoughts/s; longest pause %.0f ms\n", fl.Throughput, fl.LongestPauseMs)
	}
	if r.CeilingPub > 0 {
		fmt.Fprintf(w, "ceiling on the same server: nats bench js pub async %.0f msgs/s, js consume %.0f msgs/s; noesis = %.1f%% of the publish ceiling\n",
			r.CeilingPub, r.CeilingConsume, 100*r.RatioToPubCeil)
	}
	return writeGoals(w, r.Goals)
}
