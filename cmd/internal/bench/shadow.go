package bench

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/cmd/internal/service"
	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
)

// ShadowSide is one chain's figures in a shadow comparison.
type ShadowSide struct {
	Chain     string         `json:"chain"`
	Verdicts  int            `json:"verdicts"`
	Complete  int            `json:"complete"`
	Errors    int            `json:"errors"`
	Decisions map[string]int `json:"decisions"`
	P50ms     float64        `json:"p50_ms"`
	P99ms     float64        `json:"p99_ms"`
	CostUSD   float64        `json:"cost_usd"`
	Tokens    int            `json:"tokens"`
}

// ShadowFigures compares the tribunal's decisions on the same thoughts under
// two REASONING chains.
type ShadowFigures struct {
	FromSeq   uint64     `json:"from_seq"`
	ToSeq     uint64     `json:"to_seq"`
	Thoughts  int        `json:"thoughts"`
	Baseline  ShadowSide `json:"baseline"`
	Candidate ShadowSide `json:"candidate"`
	// Agree counts thoughts both chains decided alike; Kappa is Cohen's kappa
	// of the two decisions (a failed deliberation counts as "error").
	Agree int     `json:"agree"`
	Kappa float64 `json:"kappa"`
	// Confusion counts baseline decision -> candidate decision.
	Confusion map[string]map[string]int `json:"confusion"`
}

func newBenchShadowCmd() *cobra.Command {
	var (
		candidate       string
		from, to        uint64
		limit, parallel int
	)
	cmd := &cobra.Command{
		Use:   "shadow",
		Short: "Replay thoughts through a candidate REASONING chain and compare its verdicts",
		Long: `Read a range of NOESIS_THOUGHTS (the users' own traffic) and deliberate on each
thought twice, in this process: with the configured REASONING chain and with the
candidate chain (--candidate, "provider:model[,provider:model]", the syntax of
NOESIS_REASONING_CHAIN). Prints decision agreement with Cohen's kappa, latency,
tokens and cost side by side. Shadow verdicts are never published: nothing
reaches noesis.verdicts.>, and nothing is acknowledged on the stream.`,
		Args: cobra.NoArgs,
		RunE: runFigures(func(ctx context.Context, cfg config.Config, progress io.Writer) (*ShadowFigures, error) {
			if candidate == "" {
				return nil, fmt.Errorf("--candidate: name the chain to compare, for example nebius:deepseek-ai/DeepSeek-V3-0324-fast")
			}
			nc, js, err := service.Connect(cfg, "noesis-bench-shadow")
			if err != nil {
				return nil, err
			}
			defer nc.Close()
			return Shadow(ctx, cfg, js, candidate, from, to, limit, parallel, progress)
		}, WriteShadowFigures),
	}
	f := cmd.Flags()
	f.StringVar(&candidate, "candidate", "", `the candidate REASONING chain, "provider:model[,provider:model]"`)
	f.Uint64Var(&from, "from-seq", 0, "first NOESIS_THOUGHTS sequence to replay (0: the first stored)")
	f.Uint64Var(&to, "to-seq", 0, "last sequence to replay (0: the last stored)")
	f.IntVar(&limit, "max", 200, "replay at most this many thoughts")
	f.IntVar(&parallel, "parallel", 16, "thoughts deliberated at once")
	f.String("format", "table", "table or json")
	return cmd
}

// Shadow replays thoughts from js's NOESIS_THOUGHTS through the
// configured and the candidate REASONING chains.
func Shadow(ctx context.Context, cfg config.Config, js jetstream.JetStream, candidate string, from, to uint64, limit, parallel int, progress io.Writer) (*ShadowFigures, error) {
	cand, err := candidateConfig(cfg, candidate)
	if err != nil {
		return nil, err
	}
	simURL := cfg.SimURL
	if (cfg.UsesSim() || cand.UsesSim()) && simURL == "" {
		srv, err := sim.New(cfg.Sim())
		if err != nil {
			return nil, err
		}
		sctx, cancel := context.WithCancel(ctx)
		defer func() { cancel(); srv.Wait() }()
		if simURL, err = srv.Start(sctx, nil); err != nil {
			return nil, err
		}
	}
	baseTrib, baseName, err := shadowTribunal(cfg, simURL)
	if err != nil {
		return nil, err
	}
	candTrib, candName, err := shadowTribunal(cand, simURL)
	if err != nil {
		return nil, err
	}
	thoughts, first, last, err := readTribunalThoughts(ctx, js, from, to, limit, cfg.MaxThoughtBytes)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "bench shadow: %d thoughts from %s; baseline %s, candidate %s\n", len(thoughts), consumers.StreamThoughts, baseName, candName)
	pairs, baseLat, candLat := deliberateBoth(ctx, baseTrib, candTrib, thoughts, parallel)
	res := &ShadowFigures{FromSeq: first, ToSeq: last, Thoughts: len(thoughts), Confusion: map[string]map[string]int{},
		Baseline: ShadowSide{Chain: baseName, Decisions: map[string]int{}}, Candidate: ShadowSide{Chain: candName, Decisions: map[string]int{}}}
	res.tally(pairs)
	res.Baseline.P50ms, res.Baseline.P99ms = percentile(baseLat, 50), percentile(baseLat, 99)
	res.Candidate.P50ms, res.Candidate.P99ms = percentile(candLat, 50), percentile(candLat, 99)
	return res, nil
}

// candidateConfig is cfg with candidate as the REASONING chain, for every
// judge: the judges' own targets would hide the candidate.
func candidateConfig(cfg config.Config, candidate string) (config.Config, error) {
	cand := cfg
	cand.Tier.Reasoning.Chain = candidate
	cand.JudgeSettings = map[string]config.JudgeSettings{}
	for name, js := range cfg.JudgeSettings {
		js.Target = ""
		cand.JudgeSettings[name] = js
	}
	if err := cand.Validate(); err != nil {
		return cand, fmt.Errorf("candidate chain: %w", err)
	}
	return cand, nil
}

// readTribunalThoughts reads NOESIS_THOUGHTS from sequence from (to, when
// not 0) for at most limit thoughts that want a verdict, and the sequences
// of the first and last read.
func readTribunalThoughts(ctx context.Context, js jetstream.JetStream, from, to uint64, limit, maxBytes int) (thoughts []pipeline.Thought, first, last uint64, err error) {
	stream := consumers.StreamThoughts
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	err = consumers.ReadStreamFrom(rctx, js, stream, "", from, func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil || (to > 0 && md.Sequence.Stream > to) || len(thoughts) >= limit {
			stop()
			return
		}
		t, err := pipeline.DecodeThought(m.Data(), maxBytes)
		if err != nil || !t.Wants(pipeline.StageTribunal) {
			return
		}
		thoughts = append(thoughts, t)
		if first == 0 {
			first = md.Sequence.Stream
		}
		last = md.Sequence.Stream
	})
	if err != nil && ctx.Err() == nil && rctx.Err() == nil {
		return nil, 0, 0, fmt.Errorf("read %s: %w", stream, err)
	}
	return thoughts, first, last, nil
}

// shadowPair is one thought's verdicts under the two chains (nil: failed).
type shadowPair struct{ base, cand *pipeline.Verdict }

// deliberateBoth asks both tribunals about every thought, parallel thoughts
// at once, and returns the pairs and each side's latencies in ms.
func deliberateBoth(ctx context.Context, baseTrib, candTrib *pipeline.Tribunal, thoughts []pipeline.Thought, parallel int) (pairs []shadowPair, baseLat, candLat []float64) {
	pairs = make([]shadowPair, len(thoughts))
	var mu sync.Mutex
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for i, t := range thoughts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var p shadowPair
			var bl, cl float64
			var inner sync.WaitGroup
			inner.Add(2)
			go func() { defer inner.Done(); p.base, bl = deliberate(ctx, baseTrib, t) }()
			go func() { defer inner.Done(); p.cand, cl = deliberate(ctx, candTrib, t) }()
			inner.Wait()
			mu.Lock()
			pairs[i] = p
			if p.base != nil {
				baseLat = append(baseLat, bl)
			}
			if p.cand != nil {
				candLat = append(candLat, cl)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return pairs, baseLat, candLat
}

// tally counts each side's decisions, their agreement and Cohen's kappa.
func (res *ShadowFigures) tally(pairs []shadowPair) {
	var a, b []string
	for _, p := range pairs {
		da, db := tallySide(&res.Baseline, p.base), tallySide(&res.Candidate, p.cand)
		a, b = append(a, da), append(b, db)
		if res.Confusion[da] == nil {
			res.Confusion[da] = map[string]int{}
		}
		res.Confusion[da][db]++
		if da == db {
			res.Agree++
		}
	}
	res.Kappa = cohensKappa(a, b)
}

// shadowTribunal builds a tribunal over cfg's REASONING chain, with no
// cache: each side pays for its own answers.
func shadowTribunal(cfg config.Config, simURL string) (*pipeline.Tribunal, string, error) {
	rc := cfg.Router(simURL)
	chain, err := router.New(rc, nil, zerolog.Nop())
	if err != nil {
		return nil, "", err
	}
	name := ""
	for i, t := range chain.Targets(pipeline.TierReasoning) {
		if i > 0 {
			name += ","
		}
		name += t.Name
	}
	tr, err := pipeline.NewTribunal(chain, cfg.Tribunal())
	return tr, name, err
}

func deliberate(ctx context.Context, tr *pipeline.Tribunal, t pipeline.Thought) (*pipeline.Verdict, float64) {
	started := time.Now()
	out, err := tr.Process(ctx, t)
	if err != nil {
		return nil, 0
	}
	v, _ := out.(*pipeline.Verdict)
	return v, float64(time.Since(started).Microseconds()) / 1000
}

func tallySide(s *ShadowSide, v *pipeline.Verdict) string {
	if v == nil {
		s.Errors++
		s.Decisions["error"]++
		return "error"
	}
	s.Verdicts++
	if v.AbstentionCount == 0 {
		s.Complete++
	}
	s.Decisions[string(v.Decision)]++
	s.CostUSD += v.CostUSD
	s.Tokens += v.Usage.TotalTokens
	return string(v.Decision)
}

// cohensKappa is the agreement of two raters beyond chance: 1 is perfect, 0
// is what chance gives. Two raters who never vary and agree score 1.
func cohensKappa(a, b []string) float64 {
	n := float64(len(a))
	if n == 0 {
		return 0
	}
	agree := 0.0
	ca, cb := map[string]float64{}, map[string]float64{}
	for i := range a {
		if a[i] == b[i] {
			agree++
		}
		ca[a[i]]++
		cb[b[i]]++
	}
	po, pe := agree/n, 0.0
	for k, x := range ca {
		pe += (x / n) * (cb[k] / n)
	}
	if pe == 1 {
		return 1
	}
	return (po - pe) / (1 - pe)
}

// WriteShadowFigures prints a shadow comparison as a table.
func WriteShadowFigures(w io.Writer, r *ShadowFigures) error {
	fmt.Fprintf(w, "shadow: %d thoughts (sequences %d-%d); shadow verdicts were not published\n", r.Thoughts, r.FromSeq, r.ToSeq)
	t := cli.Table(w)
	t.Header([]string{"", "baseline", "candidate"})
	rows := [][3]string{
		{"chain", r.Baseline.Chain, r.Candidate.Chain},
		{"verdicts", strconv.Itoa(r.Baseline.Verdicts), strconv.Itoa(r.Candidate.Verdicts)},
		{"complete (every judge voted)", strconv.Itoa(r.Baseline.Complete), strconv.Itoa(r.Candidate.Complete)},
		{"failed deliberations", strconv.Itoa(r.Baseline.Errors), strconv.Itoa(r.Candidate.Errors)},
		{"decisions", sortedCounts(r.Baseline.Decisions), sortedCounts(r.Candidate.Decisions)},
		{"latency p50 ms", f1(r.Baseline.P50ms), f1(r.Candidate.P50ms)},
		{"latency p99 ms", f1(r.Baseline.P99ms), f1(r.Candidate.P99ms)},
		{"tokens", strconv.Itoa(r.Baseline.Tokens), strconv.Itoa(r.Candidate.Tokens)},
		{"cost USD", fmt.Sprintf("%.4f", r.Baseline.CostUSD), fmt.Sprintf("%.4f", r.Candidate.CostUSD)},
	}
	for _, row := range rows {
		_ = t.Append(row[:])
	}
	if err := t.Render(); err != nil {
		return err
	}
	share := 0.0
	if r.Thoughts > 0 {
		share = 100 * float64(r.Agree) / float64(r.Thoughts)
	}
	fmt.Fprintf(w, "agreement: %d of %d decisions (%.1f %%), Cohen's kappa %.3f\n", r.Agree, r.Thoughts, share, r.Kappa)
	return nil
}
