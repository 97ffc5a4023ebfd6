package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
)

// arrivals records when each thought was published and when each output arrived.
type arrivals struct {
	mu        sync.Mutex
	published []time.Time
	got       map[string][]time.Time // stage -> arrival by thought index
	again     []bool                 // a judge of the thought's verdict was asked again
	// own is each verdict's own latency_ms: the tribunal's time, from the
	// delivery's start to the verdict made (-1: not read); made is its
	// created_at, when it was made.
	own       []float64
	made      []time.Time
	remaining atomic.Int64
	done      chan struct{}
	subs      []*nats.Subscription
	last      time.Time
	bytes     map[string]int // stage -> the outputs' bytes
	// transcripts and transcriptBytes count the tribunal's transcripts
	// stored beside its verdicts, for their mean size.
	transcripts, transcriptBytes int
	// from is the first measured thought: those before it are the warm-up,
	// waited for and left out of the figures (warmupVerdicts has theirs).
	from int
}

func newArrivals(n int) *arrivals {
	a := &arrivals{published: make([]time.Time, n), got: map[string][]time.Time{"narrative": make([]time.Time, n), "tribunal": make([]time.Time, n)}, again: make([]bool, n), own: make([]float64, n), made: make([]time.Time, n), done: make(chan struct{}), bytes: map[string]int{}}
	a.remaining.Store(int64(2 * n))
	return a
}

func (a *arrivals) subscribe(nc *nats.Conn, agent string) error {
	for _, subj := range []string{"noesis.narratives." + agent, "noesis.verdicts." + agent} {
		sub, err := nc.Subscribe(subj, func(m *nats.Msg) {
			now := time.Now()
			id := m.Header.Get(consumers.HeaderEventID)
			i, err := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
			stage := m.Header.Get(consumers.HeaderStage)
			a.mu.Lock()
			defer a.mu.Unlock()
			slot, ok := a.got[stage]
			if err != nil || !ok || i < 0 || i >= len(slot) || !slot[i].IsZero() {
				return
			}
			slot[i] = now
			a.bytes[stage] += len(m.Data)
			a.again[i] = stage == string(pipeline.StageTribunal) && bytes.Contains(m.Data, []byte(`"asked_again":true`))
			if stage == string(pipeline.StageTribunal) {
				a.own[i], a.made[i] = ownLatency(m.Data), madeAt(m.Data)
			}
			a.last = now
			if a.remaining.Add(-1) == 0 {
				close(a.done)
			}
		})
		if err != nil {
			return err
		}
		_ = sub.SetPendingLimits(-1, -1)
		a.subs = append(a.subs, sub)
	}
	sub, err := nc.Subscribe(consumers.TranscriptSubject(agent), func(m *nats.Msg) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.transcripts++
		a.transcriptBytes += len(m.Data)
	})
	if err != nil {
		return err
	}
	_ = sub.SetPendingLimits(-1, -1)
	a.subs = append(a.subs, sub)
	return nc.Flush()
}

// transcriptKey is meanBytes's key for the transcripts' mean size.
const transcriptKey = "transcript"

// meanBytes returns each stage's mean output size, and the transcripts'
// under transcriptKey.
func (a *arrivals) meanBytes() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for stage, b := range a.bytes {
		n := 0
		for _, t := range a.got[stage] {
			if !t.IsZero() {
				n++
			}
		}
		if n > 0 {
			out[stage] = b / n
		}
	}
	if a.transcripts > 0 {
		out[transcriptKey] = a.transcriptBytes / a.transcripts
	}
	return out
}

func (a *arrivals) wait(d time.Duration) bool {
	select {
	case <-a.done:
		return true
	case <-time.After(d):
		return false
	}
}

// verdictTimes are the publish-to-verdict times, in ms, of the thoughts
// whose verdict has arrived.
func (a *arrivals) verdictTimes() []float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var xs []float64
	for i, t := range a.got["tribunal"][a.from:] {
		if !t.IsZero() {
			xs = append(xs, ms(t.Sub(a.published[a.from+i])))
		}
	}
	return xs
}

func (a *arrivals) lastArrival() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// longestPause is the longest time between two outputs arriving, any
// stage, from the first output to the last: a pool that stands still (no
// pull request at the server, say) shows here as a pause no latency
// percentile names.
func (a *arrivals) longestPause() time.Duration {
	a.mu.Lock()
	var all []time.Time
	for _, slot := range a.got {
		for _, t := range slot[a.from:] {
			if !t.IsZero() {
				all = append(all, t)
			}
		}
	}
	a.mu.Unlock()
	slices.SortFunc(all, time.Time.Compare)
	var longest time.Duration
	for i := 1; i < len(all); i++ {
		longest = max(longest, all[i].Sub(all[i-1]))
	}
	return longest
}

func (a *arrivals) close() {
	for _, s := range a.subs {
		_ = s.Unsubscribe()
	}
}

func (a *arrivals) figures(samples map[string][]float64) ([]StageFigures, StageFigures, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []StageFigures
	var both []float64
	missing := 0
	for _, stage := range []string{"narrative", "tribunal"} {
		var xs []float64
		for i, t := range a.got[stage] {
			switch {
			case t.IsZero():
				missing++
			case i >= a.from:
				xs = append(xs, ms(t.Sub(a.published[i])))
			}
		}
		samples[stage] = xs
		out = append(out, stageFigures(stage, xs))
	}
	for i := a.from; i < len(a.published); i++ {
		n, v := a.got["narrative"][i], a.got["tribunal"][i]
		if n.IsZero() || v.IsZero() {
			continue
		}
		if v.After(n) {
			n = v
		}
		both = append(both, ms(n.Sub(a.published[i])))
	}
	samples["both"] = both
	return out, stageFigures("both outputs", both), missing
}

// ownLatency reads a verdict's own latency_ms, the first in its JSON (the
// verdict's, before its judges'); -1 when there is none.
func ownLatency(verdict []byte) float64 {
	const field = `"latency_ms":`
	i := bytes.Index(verdict, []byte(field))
	if i < 0 {
		return -1
	}
	rest := verdict[i+len(field):]
	j := bytes.IndexAny(rest, ",}")
	if j < 0 {
		return -1
	}
	v, err := strconv.ParseFloat(string(bytes.TrimSpace(rest[:j])), 64)
	if err != nil {
		return -1
	}
	return v
}

// madeAt reads a verdict's created_at, the first in its JSON; the zero
// time when there is none.
func madeAt(verdict []byte) time.Time {
	const field = `"created_at":"`
	i := bytes.Index(verdict, []byte(field))
	if i < 0 {
		return time.Time{}
	}
	rest := verdict[i+len(field):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, string(rest[:j]))
	return t
}

// verdictSplit splits the measured verdicts' end-to-end times in three:
// the wait from the thought's publish to the tribunal's start, the
// tribunal's own time (its verdict's latency_ms) and the rest, from the
// verdict made (its created_at) to its arrival: the transcript's and the
// verdict's publish and their delivery. The worker and the bench share
// this machine's clock.
func (a *arrivals) verdictSplit() (wait, own, publish StageFigures) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ws, owns, ps []float64
	for i := a.from; i < len(a.published); i++ {
		v := a.got["tribunal"][i]
		if v.IsZero() || a.own[i] < 0 || a.made[i].IsZero() {
			continue
		}
		owns = append(owns, a.own[i])
		ws = append(ws, ms(a.made[i].Sub(a.published[i]))-a.own[i])
		ps = append(ps, ms(v.Sub(a.made[i])))
	}
	return stageFigures("  before the tribunal: pull", ws), stageFigures("  the tribunal's own time", owns), stageFigures("  after it: publish", ps)
}

// answeredOnce returns the verdicts whose judges each answered at the first
// asking, and how many verdicts had a judge asked again. A judge asked
// again takes a second model call: at the seed's latencies its verdict
// takes twice the model's time, so when more than 1 % of verdicts have one
// (the simulator's judges give an unreadable answer 0.5 % of the time, as
// the answer corpus does), it is their time that sets the p99.
func (a *arrivals) answeredOnce() (StageFigures, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var xs []float64
	again := 0
	for i, v := range a.got["tribunal"] {
		switch {
		case v.IsZero(), i < a.from:
		case a.again[i]:
			again++
		default:
			xs = append(xs, ms(v.Sub(a.published[i])))
		}
	}
	return stageFigures("tribunal, judges asked once", xs), again
}

// warmupVerdicts are the warm-up's verdicts' figures: a worker's start, cold.
func (a *arrivals) warmupVerdicts() StageFigures {
	a.mu.Lock()
	defer a.mu.Unlock()
	var xs []float64
	for i, t := range a.got["tribunal"][:a.from] {
		if !t.IsZero() {
			xs = append(xs, ms(t.Sub(a.published[i])))
		}
	}
	return stageFigures("warm-up verdicts (a cold start)", xs)
}

// publishedAt is when thought i was published.
func (a *arrivals) publishedAt(i int) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.published[i]
}

func stageFigures(name string, xs []float64) StageFigures {
	return StageFigures{Stage: name, Received: len(xs), P50ms: percentile(xs, 50), P95ms: percentile(xs, 95), P99ms: percentile(xs, 99), MaxMs: percentile(xs, 100)}
}

// publishThoughts publishes n thoughts for agent at rate (0: at once),
// asynchronously, recording each publish time. It returns the first publish time.
func publishThoughts(ctx context.Context, js jetstream.JetStream, agent, prefix string, n int, rate float64, content func(int) string, a *arrivals) (time.Time, error) {
	return publishRamped(ctx, js, agent, prefix, n, rate, 0, content, a)
}

// rampedAt is when thought i goes out of a run whose offered rate grows
// evenly from 0 to rate over ramp, then stays at rate: the first
// rate*ramp/2 thoughts are the ramp's (as traffic grows in the morning, not
// in a step), and rampLen says how many.
func rampedAt(i int, rate float64, ramp time.Duration) time.Duration {
	if rate <= 0 {
		return 0
	}
	r := ramp.Seconds()
	if n := rampLen(rate, ramp); i < n {
		return time.Duration(math.Sqrt(2*r*float64(i)/rate) * float64(time.Second))
	}
	return time.Duration((r + float64(i-rampLen(rate, ramp))/rate) * float64(time.Second))
}

// rampLen is how many thoughts a ramp from 0 to rate over ramp offers.
func rampLen(rate float64, ramp time.Duration) int { return int(rate * ramp.Seconds() / 2) }

// publishRamped is publishThoughts with the offered rate growing from 0 to
// rate over ramp first (rampedAt).
func publishRamped(ctx context.Context, js jetstream.JetStream, agent, prefix string, n int, rate float64, ramp time.Duration, content func(int) string, a *arrivals) (time.Time, error) {
	payloads := make([][]byte, n)
	for i := range payloads {
		th := pipeline.Thought{EventID: fmt.Sprintf("%s-%d", prefix, i), AgentID: agent, Content: pipeline.Content{UserInput: content(i), Depth: 2},
			Action: "compact /archive", Stages: []pipeline.Stage{pipeline.StageNarrative, pipeline.StageTribunal}}
		payloads[i], _ = json.Marshal(th)
	}
	subject := consumers.ThoughtSubject(agent)
	start := time.Now()
	for i := 0; i < n; i++ {
		if rate > 0 {
			if wait := time.Until(start.Add(rampedAt(i, rate, ramp))); wait > 0 {
				time.Sleep(wait)
			}
		}
		a.mu.Lock()
		a.published[i] = time.Now()
		a.mu.Unlock()
		// As fast as it takes them: a publisher with too many acknowledgements
		// outstanding waits for the server to catch up, then goes on.
		for {
			_, err := js.PublishAsync(subject, payloads[i], jetstream.WithMsgID(fmt.Sprintf("%s-%d", prefix, i)))
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || ctx.Err() != nil {
				return start, fmt.Errorf("publish: %w", err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		return start, fmt.Errorf("publish: acknowledgements missing after 60 s")
	case <-ctx.Done():
		return start, ctx.Err()
	}
	return start, nil
}
