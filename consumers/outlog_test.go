package consumers

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
)

// serve logs a line per output: at 1,000 thoughts a second that is 3,000
// lines a second, which must cost no allocation beyond the writer's.
func TestOutputLineAllocatesNothing(t *testing.T) {
	log := zerolog.New(io.Discard).With().Str("stage", "tribunal").Logger()
	d := &delivery{base: &log, seq: 7, delivered: 1, thought: pipeline.Thought{EventID: "evt-42", AgentID: "daimon-1"}}
	v := &pipeline.Verdict{Meta: pipeline.Meta{LatencyMS: 17234}, Decision: pipeline.DecisionReview, ConsensusScore: 0.6714, AbstentionCount: 1}
	n := &pipeline.Narrative{Meta: pipeline.Meta{LatencyMS: 1100, Cached: true}}
	if a := testing.AllocsPerRun(1000, func() {
		logOutput(d, pipeline.StageTribunal, v)
		logOutput(d, pipeline.StageNarrative, n)
	}); a != 0 && !raceEnabled { // under -race, sync.Pool drops zerolog's events at random
		t.Errorf("%.1f allocations per two output lines, want 0", a)
	}
	var buf bytes.Buffer
	*d.base = log.Output(&buf)
	logOutput(d, pipeline.StageTribunal, v)
	want := `{"level":"info","stage":"tribunal","seq":7,"delivery":1,"event_id":"evt-42","agent_id":"daimon-1","decision":"review","consensus":0.6714,"abstentions":1,"latency_ms":17234,"cached":false,"message":"verdict published"}`
	if got := strings.TrimSpace(buf.String()); got != want {
		t.Errorf("line\n%s\nwant\n%s", got, want)
	}
}

// A watch says a stage is still at work every so often, with the judges
// answered, and says nothing once removed.
func TestProgressLinesStopWithTheStage(t *testing.T) {
	var buf lines
	ws := &watches{every: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ws.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	log := zerolog.New(&buf)
	w := &watch{d: &delivery{base: &log, seq: 3, delivered: 1, thought: pipeline.Thought{EventID: "e-1", AgentID: "a-1"}}, stage: pipeline.StageTribunal}
	ws.add(w, time.Now())
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(buf.String(), "still deliberating") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no progress lines: %q", buf.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	ws.remove(w)
	stopped := buf.String()
	ws.say(time.Now().Add(time.Hour)) // a tick that raced the removal
	if buf.String() != stopped {
		t.Errorf("a line after the removal: %q", strings.TrimPrefix(buf.String(), stopped))
	}
}

// lines is the progress lines' log sink, written by the timer's goroutine.
type lines = natstest.Buffer

// infoEnabled says what an info event would, and costs nothing: asked of
// an event, it took one from zerolog's pool for every delivery and never
// gave it back.
func TestInfoEnabledAllocatesNothing(t *testing.T) {
	for _, c := range []struct {
		log  zerolog.Logger
		want bool
	}{
		{zerolog.New(io.Discard), true},
		{zerolog.New(io.Discard).Level(zerolog.DebugLevel), true},
		{zerolog.New(io.Discard).Level(zerolog.WarnLevel), false},
		{zerolog.Nop(), false},
	} {
		if got := infoEnabled(c.log); got != c.want || got != c.log.Info().Enabled() {
			t.Errorf("level %s: infoEnabled %v, want %v", c.log.GetLevel(), got, c.want)
		}
	}
	log := zerolog.New(io.Discard)
	if a := testing.AllocsPerRun(1000, func() { _ = infoEnabled(log) }); a != 0 {
		t.Errorf("%.1f allocations a call, want 0", a)
	}
}
