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
// stage is still at work on the thought (PoolConfig.ProgressEvery; the
// pool's watches say them). A cache hit is an output like any
// other and logs its line (cached=true): one line per output, whatever
// served it. An output the stream already had (a redelivery) logs nothing
// here; publish says so at debug. The line costs no allocation: the
// thought's fields are written into the line itself, with no logger of the
// delivery's own (TestOutputLineAllocatesNothing).
func (p *Pool) logged(next handlerFunc) handlerFunc {
	return func(ctx context.Context, d *delivery) (result, error) {
		if !infoEnabled(*d.pool()) {
			return next(ctx, d)
		}
		w := &d.watch
		w.d, w.stage = d, p.cfg.Stage
		p.watches.add(w, time.Now())
		r, err := next(pipeline.WithProgress(ctx, &w.progress), d)
		p.watches.remove(w)
		if err == nil && r.out != nil && !r.dup {
			logOutput(d, p.cfg.Stage, r.out)
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

// logOutput writes an output's line to d's pool's log, with the thought's
// seq, delivery, event id and agent.
func logOutput(d *delivery, stage pipeline.Stage, out pipeline.Output) {
	m := out.Envelope()
	e := d.fields(d.pool().Info())
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

// watch is a delivery's stage at work, as its pool's watches see it.
type watch struct {
	d        *delivery // its log lines are d's (delivery.fields)
	stage    pipeline.Stage
	progress pipeline.Progress
	started  time.Time // guarded by watches.mu, as next is
	next     time.Time // when its next progress line is due
}

// watches says, every so often, that each stage at work on a thought is
// still at it: one goroutine per pool (run), as the heartbeats, not a timer
// and its goroutine per delivery (the timers and watches of every delivery
// were 5 % of the bytes a worker allocated on cache hits).
type watches struct {
	mu    sync.Mutex
	every time.Duration
	on    map[*watch]struct{}
}

// add starts watching w, its stage at work since now.
func (ws *watches) add(w *watch, now time.Time) {
	ws.mu.Lock()
	if ws.on == nil {
		ws.on = map[*watch]struct{}{}
	}
	w.started, w.next = now, now.Add(ws.every)
	ws.on[w] = struct{}{}
	ws.mu.Unlock()
}

// remove stops watching w. No progress line of w is written after it
// returns: say writes them holding mu.
func (ws *watches) remove(w *watch) {
	ws.mu.Lock()
	delete(ws.on, w)
	ws.mu.Unlock()
}

// run says the progress lines until ctx ends, each within a quarter of
// every of its time; Run waits for it.
func (ws *watches) run(ctx context.Context) {
	t := time.NewTicker(max(ws.every/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			ws.say(now)
		}
	}
}

// say writes the progress line of every watch due by now.
func (ws *watches) say(now time.Time) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for w := range ws.on {
		if now.Before(w.next) {
			continue
		}
		e := w.d.fields(w.d.pool().Info()).Dur("running", now.Sub(w.started).Round(time.Second))
		if answered, asked := w.progress.Answered(); asked > 0 {
			e = e.Int("judges_answered", answered).Int("judges", asked)
		}
		e.Msg(stillMessages[w.stage])
		w.next = now.Add(ws.every)
	}
}
