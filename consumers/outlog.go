package consumers

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
)

// DefaultProgressEvery is how often a stage still running on a thought says
// so at info ("still deliberating", with the judges answered so far): the
// default simulated judges think 12-20 s and an analysis ~40 s, long enough
// for a person watching serve's log to wonder.
const DefaultProgressEvery = 10 * time.Second

// logged is the middleware that logs one line at info for each output the
// pool publishes (its event id, agent, stage, decision and consensus for a
// verdict, latency, and whether the cache answered; never the thought's
// text or a model's), and a progress line every ProgressEvery while the
// stage is still at work on the thought (PoolConfig.ProgressEvery). A cache hit is an output like any
// other and logs its line (cached=true): one line per output, whatever
// served it. An output the stream already had (a redelivery) logs nothing
// here; publish says so at debug. The line costs no allocation: the
// delivery's logger already holds the thought's fields
// (TestOutputLineAllocatesNothing).
func (p *Pool) logged(next handlerFunc) handlerFunc {
	return func(ctx context.Context, d *delivery) (result, error) {
		if !infoEnabled(d.log) {
			return next(ctx, d)
		}
		w := &watch{log: d.log, stage: p.cfg.Stage, started: time.Now(), every: p.cfg.ProgressEvery}
		w.start()
		r, err := next(pipeline.WithProgress(ctx, &w.progress), d)
		w.stop()
		if err == nil && r.out != nil && !r.dup {
			logOutput(d.log, p.cfg.Stage, r.out)
		}
		return r, err
	}
}

// infoEnabled reports whether log writes info lines. Asked of an event
// (log.Info().Enabled()), it cost an event taken from zerolog's pool and
// never given back: 512 bytes a delivery.
func infoEnabled(log zerolog.Logger) bool {
	return log.GetLevel() <= zerolog.InfoLevel && zerolog.GlobalLevel() <= zerolog.InfoLevel
}

// outputMessages are the output lines' messages, by stage.
var outputMessages = map[pipeline.Stage]string{
	pipeline.StageNarrative: "narrative published",
	pipeline.StageTribunal:  "verdict published",
	pipeline.StageAnalysis:  "analysis published",
}

// logOutput writes an output's line to log, which carries the thought's
// event id and agent.
func logOutput(log zerolog.Logger, stage pipeline.Stage, out pipeline.Output) {
	m := out.Envelope()
	e := log.Info()
	if v, ok := out.(*pipeline.Verdict); ok {
		e = e.Str("decision", string(v.Decision)).Float64("consensus", v.ConsensusScore).Int("abstentions", v.AbstentionCount)
	}
	e.Int64("latency_ms", m.LatencyMS).Bool("cached", m.Cached).Msg(outputMessages[stage])
}

// stillMessages are the progress lines' messages, by stage.
var stillMessages = map[pipeline.Stage]string{
	pipeline.StageNarrative: "still writing",
	pipeline.StageTribunal:  "still deliberating",
	pipeline.StageAnalysis:  "still analysing",
}

// watch says, every so often, that a thought's stage is still at work.
type watch struct {
	log      zerolog.Logger
	stage    pipeline.Stage
	started  time.Time
	every    time.Duration
	progress pipeline.Progress

	mu    sync.Mutex
	timer *time.Timer
	done  bool
}

// start says the first progress line after every.
func (w *watch) start() {
	w.mu.Lock()
	w.timer = time.AfterFunc(w.every, w.tick)
	w.mu.Unlock()
}

// tick says the stage is still at work, unless the watch is stopped, and
// says it again after every.
func (w *watch) tick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	e := w.log.Info().Dur("running", time.Since(w.started).Round(time.Second))
	if answered, asked := w.progress.Answered(); asked > 0 {
		e = e.Int("judges_answered", answered).Int("judges", asked)
	}
	e.Msg(stillMessages[w.stage])
	w.timer.Reset(w.every)
}

// stop ends the watch: no progress line follows. A line being written when
// it is called is finished first (tick holds mu while it writes), so no
// timer goroutine of the watch does anything after stop returns.
func (w *watch) stop() {
	w.mu.Lock()
	w.done = true
	w.timer.Stop()
	w.mu.Unlock()
}
