package review_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/docs/contract"
	"github.com/noesis-dev/noesis/pipeline"
)

// Every verdict that requires review is queued once, within a second, with
// its thought; a verdict that passes is not; a publisher's retry of the same
// thought and a feeder that reads every verdict again add none.
func TestFeederQueuesEveryReviewOnce(t *testing.T) {
	st := newStack(t)
	stop := runFeeder(t, st.js)
	x := review.NewIndex(st.js)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = x.Run(ctx) }()

	sent := time.Now()
	publish(t, st.js, "daimon-1", "evt-1", "maybe deploy the experimental build")
	publish(t, st.js, "daimon-1", "evt-1", "maybe deploy the experimental build") // the publisher's retry
	publish(t, st.js, "daimon-1", "evt-2", "wipe it all: a capital idea")
	publish(t, st.js, "daimon-1", "evt-3", "water the plants")
	natstest.Eventually(t, 5*time.Second, func() bool { n, _ := x.Waiting(); return n == 2 }, func() string { return summaries(x.List(false)) })
	for _, s := range x.List(true) {
		if lag := s.QueuedAt.Sub(sent); lag > time.Second {
			t.Errorf("review %s queued %s after its thought was published; want within 1 s", s.EventID, lag)
		}
	}
	got := x.List(false)
	if len(got) != 2 || got[0].EventID == got[1].EventID {
		t.Fatalf("reviews: %s; want evt-1 and evt-2", summaries(got))
	}
	desk := review.NewDesk(st.js)
	schemas, err := contract.Schemas()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		r, err := desk.Review(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := json.Marshal(r)
		if err := contract.Validate(schemas, contract.Review, stored); err != nil {
			t.Errorf("a stored review is not valid: %v", err)
		}
		th, ok := r.ReadThought()
		v, verr := r.ReadVerdict()
		want := map[string]pipeline.Decision{"evt-1": pipeline.DecisionReview, "evt-2": pipeline.DecisionCapital}[r.EventID]
		if !ok || th.EventID != r.EventID || verr != nil || v.Decision != want || r.VerdictDecision != string(want) || r.AgentID != "daimon-1" {
			t.Errorf("review %+v: thought %v (%v), verdict %s (%v); want the thought and a %s verdict", s, th, ok, v.Decision, verr, want)
		}
	}

	// A feeder that reads every verdict again (its consumer deleted) finds
	// the reviews stored and stores none twice.
	stop()
	if err := st.js.DeleteConsumer(ctx, consumers.StreamOutputs, review.FeederConsumer); err != nil {
		t.Fatal(err)
	}
	runFeeder(t, st.js)
	natstest.Eventually(t, 10*time.Second, func() bool {
		c, err := st.js.Consumer(ctx, consumers.StreamOutputs, review.FeederConsumer)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Consumer >= 3
	}, func() string { return "the new feeder did not read every verdict" })
	if again := load(t, st.js); len(again) != 2 {
		t.Fatalf("after reading every verdict again: %s; want the same 2", summaries(again))
	}
	s, _ := st.js.Stream(ctx, review.Stream)
	if info, _ := s.Info(ctx); info.State.Msgs != 2 {
		t.Fatalf("%s holds %d messages; want 2", review.Stream, info.State.Msgs)
	}
}

// Eight reviewers decide one review at the same moment: one decision is
// stored and reaches the agent once, on noesis.reviews.<agent_id>; the
// others are told who decided and when. A publish that goes around Desk is
// refused by the stream itself.
func TestDecideExactlyOnceUnderRace(t *testing.T) {
	st := newStack(t)
	runFeeder(t, st.js)
	publish(t, st.js, "daimon-1", "evt-a", "maybe a")
	publish(t, st.js, "daimon-1", "evt-b", "maybe b")
	rs := waitReviews(t, st.js, 2, 5*time.Second)
	a, b := rs[0], rs[1]
	if a.EventID != "evt-a" {
		a, b = b, a
	}

	agent, _ := natstest.Connect(t, st.ns)
	var mu sync.Mutex
	var heard []*nats.Msg
	if _, err := agent.Subscribe(review.PublicSubject("daimon-1"), func(m *nats.Msg) { mu.Lock(); heard = append(heard, m); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	if err := agent.Flush(); err != nil {
		t.Fatal(err)
	}

	const n = 8
	start := make(chan struct{})
	type result struct {
		d   review.Ruling
		err error
	}
	results := make(chan result, n)
	for i := range n {
		_, js := natstest.Connect(t, st.ns)
		desk := review.NewDesk(js)
		choice := review.Choice{Decision: []string{review.Pass, review.Fail}[i%2], Note: fmt.Sprintf("note %d", i), Reviewer: fmt.Sprintf("r%d", i)}
		go func() {
			<-start
			d, err := desk.Decide(context.Background(), a.ID, choice)
			results <- result{d, err}
		}()
	}
	close(start)
	var won []review.Ruling
	var lost []*review.DecidedError
	for range n {
		r := <-results
		var de *review.DecidedError
		switch {
		case r.err == nil:
			won = append(won, r.d)
		case errors.As(r.err, &de) && errors.Is(r.err, review.ErrAlreadyDecided):
			lost = append(lost, de)
		default:
			t.Fatalf("decide: %v", r.err)
		}
	}
	if len(won) != 1 || len(lost) != n-1 {
		t.Fatalf("%d decisions stored, %d refused; want 1 and %d", len(won), len(lost), n-1)
	}
	for _, de := range lost {
		if de.Decision.Reviewer != won[0].Reviewer || !strings.Contains(de.Error(), "already decided by "+won[0].Reviewer+" at ") {
			t.Errorf("refused with %q; want it to name %s", de, won[0].Reviewer)
		}
	}

	// Around Desk: a raw publish on the decision's subject is refused.
	if _, err := st.js.Publish(context.Background(), review.DecidedSubject("daimon-1", a.ID), []byte(`{"decision":"pass"}`)); err == nil {
		t.Fatal("a second decision published around Desk was stored")
	}

	// Decisions of one stream reach a subscriber in order: once b's is
	// heard, a second message for a would have been heard before it.
	desk := review.NewDesk(st.js)
	if _, err := desk.Decide(context.Background(), b.ID, review.Choice{Decision: review.Pass, Note: "fine", Reviewer: "r9"}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(heard) > 0 && strings.Contains(string(heard[len(heard)-1].Data), `"evt-b"`)
	}, func() string { return fmt.Sprintf("%d messages heard, none for evt-b", len(heard)) })
	mu.Lock()
	defer mu.Unlock()
	if len(heard) != 2 {
		t.Fatalf("the agent heard %d decisions; want 2 (one per review)", len(heard))
	}
	var got map[string]any
	if err := json.Unmarshal(heard[0].Data, &got); err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339, fmt.Sprint(got["decided_at"]))
	if got["event_id"] != "evt-a" || got["decision"] != won[0].Decision || got["note"] != won[0].Note || got["reviewer"] != won[0].Reviewer ||
		got["agent_id"] != "daimon-1" || got["verdict_decision"] != "review" || err != nil || !at.Equal(won[0].DecidedAt) {
		t.Errorf("the agent heard %s; want the stored decision %+v", heard[0].Data, won[0])
	}
	stored, err := desk.Decision(context.Background(), "daimon-1", a.ID)
	if err != nil || stored != won[0] {
		t.Errorf("stored decision %+v (%v); want %+v", stored, err, won[0])
	}
}

// What a reviewer may not decide.
func TestDecideRefuses(t *testing.T) {
	st := newStack(t)
	runFeeder(t, st.js)
	publish(t, st.js, "daimon-1", "evt-r", "maybe r")
	id := waitReviews(t, st.js, 1, 5*time.Second)[0].ID
	desk := review.NewDesk(st.js)
	ctx := context.Background()
	cases := []struct {
		name string
		id   string
		c    review.Choice
		want error
	}{
		{"a third decision", id, review.Choice{Decision: "review", Note: "n", Reviewer: "r"}, review.ErrInvalid},
		{"no note", id, review.Choice{Decision: review.Pass, Note: "  ", Reviewer: "r"}, review.ErrInvalid},
		{"a note too long", id, review.Choice{Decision: review.Pass, Note: strings.Repeat("x", review.MaxNoteRunes+1), Reviewer: "r"}, review.ErrInvalid},
		{"no reviewer", id, review.Choice{Decision: review.Pass, Note: "n"}, review.ErrInvalid},
		{"no such review", "0123456789abcdef", review.Choice{Decision: review.Pass, Note: "n", Reviewer: "r"}, review.ErrNotFound},
		{"not an id", "../../x", review.Choice{Decision: review.Pass, Note: "n", Reviewer: "r"}, review.ErrNotFound},
	}
	for _, c := range cases {
		if _, err := desk.Decide(ctx, c.id, c.c); !errors.Is(err, c.want) {
			t.Errorf("%s: %v; want %v", c.name, err, c.want)
		}
	}
	if _, err := desk.Decision(ctx, "daimon-1", id); !errors.Is(err, review.ErrNotFound) {
		t.Errorf("decision on a waiting review: %v; want ErrNotFound", err)
	}
}

// The index sees a review queued and decided as it happens.
func TestIndexFollowsLive(t *testing.T) {
	st := newStack(t)
	runFeeder(t, st.js)
	x := review.NewIndex(st.js)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-x.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("index not ready on an empty stream")
	}
	changed := x.Changed()
	publish(t, st.js, "daimon-1", "evt-l", "maybe live")
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no change seen for a queued review")
	}
	n, oldest := x.Waiting()
	if n != 1 || oldest.IsZero() {
		t.Fatalf("waiting %d since %s; want 1", n, oldest)
	}
	id := x.List(true)[0].ID
	if _, err := review.NewDesk(st.js).Decide(ctx, id, review.Choice{Decision: review.Fail, Note: "no", Reviewer: "r"}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, func() bool { n, _ := x.Waiting(); return n == 0 }, func() string { return summaries(x.List(false)) })
	if l := x.List(false); len(l) != 1 || l[0].Decided == nil || l[0].Decided.Decision != review.Fail {
		t.Fatalf("list %+v; want the review decided fail", l)
	}
}
