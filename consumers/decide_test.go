package consumers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
)

// pulledDeliveries publishes n thoughts for p's stage and pulls them back
// through p's consumer, each read as the pool reads it.
func pulledDeliveries(t *testing.T, ctx context.Context, js jetstream.JetStream, p *Pool, n int) []*delivery {
	t.Helper()
	cons, err := p.EnsureConsumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		body := fmt.Sprintf(`{"event_id":"e-%d","agent_id":"a1","content":{"user_input":"thought %d"}}`, i, i)
		if _, err := js.Publish(ctx, ThoughtSubject("a1"), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	var out []*delivery
	for len(out) < n {
		batch, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for msg := range batch.Messages() {
			d := p.read(msg)
			if d == nil || d.err != nil {
				t.Fatalf("thought %q not read: %+v", msg.Data(), d)
			}
			d.log = zerolog.Nop()
			out = append(out, d)
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// The dead-letter decision maps each error of a delivery, once, to ack, nak
// after a delay, or a stored dead letter and term.
func TestTheDecisionMapsEachFailureToAckNakOrDeadLetter(t *testing.T) {
	js := natstest.JetStream(t)
	ctx := context.Background()
	if err := EnsureStreams(ctx, js, StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	p, err := NewPool(js, PoolConfig{Stage: pipeline.StageNarrative, MaxDeliver: 3, RetryDelay: time.Second}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		delivered uint64
		err       error
		want      settlement
	}{
		{"success is acked", 1, nil, settlement{op: ack}},
		{"bad input is a dead letter", 1, fmt.Errorf("%w: no content", pipeline.ErrBadInput), settlement{op: term, reason: "bad input: no content"}},
		{"a permanent failure is a dead letter", 1, pipeline.ErrPermanent, settlement{op: term, reason: "permanent failure"}},
		{"a failure both permanent and transient is tried again", 1, errors.Join(pipeline.ErrPermanent, pipeline.ErrTransient), settlement{op: nak, delay: time.Second}},
		{"a transient failure is tried again, later at each delivery", 2, pipeline.ErrTransient, settlement{op: nak, delay: 2 * time.Second}},
		{"a longer Retry-After is waited, up to 5 min", 1, &pipeline.RetryAfterError{Err: pipeline.ErrTransient, After: time.Hour}, settlement{op: nak, delay: 5 * time.Minute}},
		{"the last delivery's failure is a dead letter", 3, pipeline.ErrTransient, settlement{op: term, reason: "gave up after 3 deliveries: transient failure"}},
	}
	ds := pulledDeliveries(t, ctx, js, p, len(cases))
	letters := 0
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := ds[i]
			d.delivered = tc.delivered
			decide := p.decided(func(context.Context, *delivery) (result, error) { return result{}, tc.err })
			r, err := decide(ctx, d)
			if !errors.Is(err, tc.err) || r.settle != tc.want {
				t.Errorf("settled %+v (error %v), want %+v", r.settle, err, tc.want)
			}
			if tc.want.op == term {
				letters++
			}
		})
	}
	stored, err := ListLetters(ctx, js, pipeline.StageNarrative)
	if err != nil || len(stored) != letters {
		t.Fatalf("%d letters stored (%v), want %d", len(stored), err, letters)
	}
	for _, l := range stored {
		if !strings.Contains(l.Subject, "a1") || l.Seq == 0 {
			t.Errorf("letter for %q, seq %d", l.Subject, l.Seq)
		}
	}
	if st := p.Stats(); st.DeadLettered != uint64(letters) || st.Retried != 3 {
		t.Errorf("stats %+v: want %d dead-lettered and 3 retried", st, letters)
	}
}
