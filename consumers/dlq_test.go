package consumers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
)

// A worker that takes a thought and dies on its last delivery leaves nothing
// behind but a max-deliveries advisory; the reaper turns it into a dead letter.
func TestReaperDeadLettersThoughtsThatRanOutOfDeliveries(t *testing.T) {
	ctx, js := withStreams(t)
	if err := consumers.EnsureAdvisoryStream(ctx, js, consumers.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	pool, err := consumers.NewPool(js, consumers.PoolConfig{Stage: pipeline.StageNarrative, AckWait: 300 * time.Millisecond, MaxDeliver: 2}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	cons, err := pool.EnsureConsumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"event_id":"lost-1","agent_id":"a1","content":{"user_input":"x"}}`
	if _, err := js.Publish(ctx, "noesis.thoughts.a1", []byte(body), jetstream.WithMsgID("lost-1")); err != nil {
		t.Fatal(err)
	}
	// Two deliveries, never acked: a worker that crashed twice.
	for i := 0; i < 2; i++ {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range b.Messages() {
			n++
		}
		if n != 1 {
			t.Fatalf("delivery %d: got %d messages", i+1, n)
		}
	}
	// A third pull (the workers that are still alive) finds nothing: the
	// server gives up on the thought and says so in an advisory.
	if b, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second)); err == nil {
		for m := range b.Messages() {
			t.Fatalf("a third delivery: %s", m.Data())
		}
	}
	go func() { _ = consumers.NewReaper(js, zerolog.Nop()).Run(ctx) }()
	var letters []consumers.Letter
	natstest.Eventually(t, 10*time.Second, func() bool {
		var err error
		if letters, err = consumers.ListLetters(ctx, js, pipeline.StageNarrative); err != nil {
			t.Fatal(err)
		}
		return len(letters) == 1
	}, func() string { return "no dead letter for the thought that ran out of deliveries" })
	if l := letters[0]; string(l.Data) != body || l.Attempts != 2 || l.Seq != 1 || l.Subject != "noesis.thoughts.a1" || !strings.Contains(l.Reason, "no answer after 2 deliveries") {
		t.Fatalf("letter %+v", l)
	}
}

// A thought that cannot be read gets one dead letter, named "input", however
// many stages read it and however long after one another: not one per stage
// (three, kept 7 days, also for stages it did not ask for). A stage that
// comes to it after the dead letters' duplicate window has passed finds its
// letter there.
func TestOneLetterPerBadThought(t *testing.T) {
	ctx, js := withStreams(t)
	dlqSub, err := js.Conn().SubscribeSync(consumers.DLQPrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	bad := []string{
		`{"event_id":"bad-1","agent_id":`, // invalid JSON
		`{"event_id":"bad-2","agent_id":"mallory","content":{"user_input":"x"},"stages":["narrative"]}`, // not its subject's agent
		`{"event_id":"bad-3","agent_id":"a1","content":{"user_input":"x"},"stages":["poetry"]}`,         // unknown stage
	}
	for _, b := range bad {
		if _, err := js.Publish(ctx, consumers.ThoughtSubject("a1"), []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	var pools []*consumers.Pool
	for _, st := range []pipeline.Stage{pipeline.StageNarrative, pipeline.StageTribunal} {
		pools = append(pools, runPool(t, js, consumers.PoolConfig{Stage: st}, echo(st)))
	}
	natstest.Eventually(t, 10*time.Second, func() bool { return pools[0].Stats().DeadLettered == 3 && pools[1].Stats().DeadLettered == 3 },
		func() string { return fmt.Sprintf("narrative %+v, tribunal %+v", pools[0].Stats(), pools[1].Stats()) })
	// The analysis stage comes late: the dead letters' duplicate window,
	// shortened to 100 ms, has forgotten the other stages' message ids.
	dlq, err := js.Stream(ctx, consumers.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	cfg := dlq.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.Config.Duplicates == 100*time.Millisecond
	}, func() string { return "window not shortened" })
	forgotten := time.Now().Add(200 * time.Millisecond) // the window, twice over
	natstest.Eventually(t, 5*time.Second, func() bool { return time.Now().After(forgotten) }, func() string { return "the clock stopped" })
	pools = append(pools, runPool(t, js, consumers.PoolConfig{Stage: pipeline.StageAnalysis}, echo(pipeline.StageAnalysis)))
	natstest.Eventually(t, 10*time.Second, func() bool { return pools[2].Stats().DeadLettered == 3 },
		func() string { return fmt.Sprintf("analysis %+v", pools[2].Stats()) })

	letters, err := consumers.ListLetters(ctx, js, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != len(bad) {
		t.Fatalf("%d letters for %d bad thoughts, want one each", len(letters), len(bad))
	}
	for _, l := range letters { // in the order written, not the thoughts'
		if l.Stage != consumers.StageInput || l.Seq < 1 || l.Seq > uint64(len(bad)) || string(l.Data) != bad[l.Seq-1] || !strings.Contains(l.Reason, "bad input") {
			t.Errorf("letter %d: stage %q, seq %d, reason %q, data %s", l.DLQSeq, l.Stage, l.Seq, l.Reason, l.Data)
		}
	}
	if in, err := consumers.ListLetters(ctx, js, consumers.StageInput); err != nil || len(in) != len(bad) {
		t.Errorf("listed by stage %q: %d, %v", consumers.StageInput, len(in), err)
	}
	for range bad {
		m, err := dlqSub.NextMsg(2 * time.Second)
		if err != nil || m.Subject != consumers.DLQSubject(consumers.StageInput) {
			t.Fatalf("letter seen on %v: %v", m, err)
		}
	}
	if m, err := dlqSub.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("a second letter seen on %s", m.Subject)
	}
}
