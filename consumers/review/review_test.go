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
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/docs/contract"
	"github.com/noesis-dev/noesis/pipeline"
)

// Every verdict that requires review is queued once, within a second, with
// its thought; a verdict that passes is not; a publisher's retry of the same
// thought adds none; and no consumer reads NOESIS_OUTPUTS for them.
func TestPoolQueuesEveryReviewOnce(t *testing.T) {
	st := newStack(t)
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

	// Every thought's verdict is out (evt-3's too), and the reviews were
	// queued without a consumer on the outputs.
	natstest.Eventually(t, 5*time.Second, func() bool { return streamMsgs(t, st.js, consumers.StreamOutputs) == 3 },
		func() string {
			return fmt.Sprintf("%d verdicts stored; want 3", streamMsgs(t, st.js, consumers.StreamOutputs))
		})
	if names := outputConsumers(t, st.js); len(names) != 0 {
		t.Errorf("consumers on %s: %v; want none", consumers.StreamOutputs, names)
	}
	if n := streamMsgs(t, st.js, review.Stream); n != 2 {
		t.Fatalf("%s holds %d messages; want 2", review.Stream, n)
	}
}

// A thought delivered again after its review was stored and before its
// verdict was published (here: the clerk's answer lost on the first
// delivery) queues no second review, and its verdict is published once.
// A review stored long before, past the duplicate window (as by a worker
// that died mid-thought a day ago), is kept: the stream refuses the
// second, and the clerk takes that as queued.
func TestRedeliveredThoughtQueuesOneReview(t *testing.T) {
	st := newStreams(t)
	q := &loseFirstAnswer{Clerk: newClerk(t, st.js), calls: map[string]int{}}
	runPool(t, st.js, q)

	id := publish(t, st.js, "daimon-1", "evt-crash", "maybe restart the database")
	natstest.Eventually(t, 10*time.Second, func() bool { return streamMsgs(t, st.js, consumers.StreamOutputs) == 1 },
		func() string { return "no verdict published" })
	if n := q.called(id); n < 2 {
		t.Fatalf("the review was queued %d times; want the thought delivered again", n)
	}
	if n := streamMsgs(t, st.js, review.Stream); n != 1 {
		t.Fatalf("%s holds %d messages; want 1", review.Stream, n)
	}

	// Stored before, under another message id: the subject is taken.
	early, _ := json.Marshal(review.Review{ID: "0000000000000000", EventID: "evt-early", AgentID: "daimon-1", VerdictDecision: "review",
		QueuedAt: time.Now().Add(-24 * time.Hour).UTC(), Verdict: json.RawMessage(`{}`)})
	data, _ := json.Marshal(pipeline.Thought{EventID: "evt-early", AgentID: "daimon-1", Content: pipeline.Content{UserInput: "maybe drop the cache", Depth: 1},
		Stages: []pipeline.Stage{pipeline.StageTribunal}})
	earlyID := consumers.ThoughtDigest(consumers.ThoughtSubject("daimon-1"), data)
	if _, err := st.js.Publish(context.Background(), review.AgentQueuedSubject("daimon-1", earlyID), early); err != nil {
		t.Fatal(err)
	}
	if got := publish(t, st.js, "daimon-1", "evt-early", "maybe drop the cache"); got != earlyID {
		t.Fatalf("digest %s; want %s", got, earlyID)
	}
	natstest.Eventually(t, 10*time.Second, func() bool { return streamMsgs(t, st.js, consumers.StreamOutputs) == 2 },
		func() string { return "the verdict of a thought whose review was stored before is not published" })
	r, err := review.NewDesk(st.js).Review(context.Background(), earlyID)
	if err != nil || string(r.Verdict) != `{}` || streamMsgs(t, st.js, review.Stream) != 2 {
		t.Fatalf("review %s: %+v (%v); want the one stored before, and no other", earlyID, r, err)
	}
}

// A verdict that requires review is published only once its review is
// stored: the moment a subscriber has the verdict, the review is there,
// holding the verdict's very bytes, and the stream stored it first.
func TestReviewIsStoredBeforeItsVerdict(t *testing.T) {
	st := newStack(t)
	verdicts := make(chan *nats.Msg, 16)
	sub, err := st.nc.ChanSubscribe(consumers.OutputSubject(pipeline.StageTribunal, "daimon-1"), verdicts)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := st.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for i := range 5 {
		ids[publish(t, st.js, "daimon-1", fmt.Sprintf("evt-o%d", i), fmt.Sprintf("maybe step %d", i))] = true
	}
	reviews, err := st.js.Stream(context.Background(), review.Stream)
	if err != nil {
		t.Fatal(err)
	}
	for range ids {
		var m *nats.Msg
		select {
		case m = <-verdicts:
		case <-time.After(10 * time.Second):
			t.Fatal("a verdict did not arrive")
		}
		msgID := m.Header.Get(jetstream.MsgIDHeader)
		id := msgID[strings.LastIndexByte(msgID, ':')+1:]
		raw, err := reviews.GetLastMsgForSubject(context.Background(), review.AgentQueuedSubject("daimon-1", id))
		if err != nil || !ids[id] {
			t.Fatalf("verdict %s arrived and its review is not stored: %v", msgID, err)
		}
		var r review.Review
		if err := json.Unmarshal(raw.Data, &r); err != nil || string(r.Verdict) != string(m.Data) {
			t.Errorf("review %s holds the verdict %s (%v); want the bytes published, %s", id, r.Verdict, err, m.Data)
		}
		storedAt, err := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp"))
		if err != nil {
			t.Fatalf("the republished verdict has no Nats-Time-Stamp: %v", m.Header)
		}
		if raw.Time.After(storedAt) {
			t.Errorf("review %s stored at %s, after its verdict at %s", id, raw.Time, storedAt)
		}
	}
}

// A review refused for want of room holds its thought, the verdict not
// published, without spending a delivery; once there is room the review is
// queued and the verdict follows.
func TestFullReviewStreamHoldsTheVerdict(t *testing.T) {
	st := newStreams(t)
	ctx := context.Background()
	if _, err := st.js.UpdateStream(ctx, review.StreamConfig(review.Config{MaxBytes: 256})); err != nil { // less than one review
		t.Fatal(err)
	}
	pool := runPool(t, st.js, newClerk(t, st.js))
	id := publish(t, st.js, "daimon-1", "evt-full", "maybe archive the logs")
	natstest.Eventually(t, 10*time.Second, func() bool { return pool.Stats().FullWaits >= 1 },
		func() string { return fmt.Sprintf("pool %+v; want the thought held", pool.Stats()) })
	if n := streamMsgs(t, st.js, consumers.StreamOutputs); n != 0 {
		t.Fatalf("%d verdicts published while the review stream was full; want none", n)
	}
	if _, err := st.js.UpdateStream(ctx, review.StreamConfig(review.Config{})); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, func() bool { return streamMsgs(t, st.js, consumers.StreamOutputs) == 1 },
		func() string { return "no verdict once there was room" })
	if _, err := review.NewDesk(st.js).Review(ctx, id); err != nil {
		t.Fatalf("review %s: %v", id, err)
	}
	if s := pool.Stats(); s.Retried != 0 || s.DeadLettered != 0 {
		t.Errorf("pool %+v; want the thought held, not retried", s)
	}
}

// loseFirstAnswer is a Clerk whose first answer for each review is lost:
// the review is stored, and the pool is told it failed.
type loseFirstAnswer struct {
	*review.Clerk
	mu    sync.Mutex
	calls map[string]int
}

func (q *loseFirstAnswer) Queue(ctx context.Context, msg jetstream.Msg, verdict []byte) ([]byte, error) {
	held, err := q.Clerk.Queue(ctx, msg, verdict)
	q.mu.Lock()
	defer q.mu.Unlock()
	id := consumers.ThoughtDigest(msg.Subject(), msg.Data())
	q.calls[id]++
	if err == nil && q.calls[id] == 1 {
		return nil, errors.New("the clerk's answer was lost")
	}
	return held, err
}

func (q *loseFirstAnswer) called(id string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.calls[id]
}

// Eight reviewers decide one review at the same moment: one decision is
// stored and reaches the agent once, on noesis.reviews.<agent_id>; the
// others are told who decided and when. A publish that goes around Desk is
// refused by the stream itself.
func TestDecideExactlyOnceUnderRace(t *testing.T) {
	st := newStack(t)
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
