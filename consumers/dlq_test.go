package consumers_test

import (
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
