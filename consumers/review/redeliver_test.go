package review_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/pipeline"
)

// A worker that stored a verdict's review and died before publishing the
// verdict leaves the thought to be judged again, and the second judgement
// differs: another latency and time, or another decision altogether (an
// unavailable verdict that passes the second time). The verdict published
// is the one the review holds, byte for byte: the agent and the reviewer
// see one verdict, and there is one of each.
func TestRedeliveredThoughtPublishesTheReviewedVerdict(t *testing.T) {
	cases := []struct {
		name   string
		second pipeline.Decision // the second judgement's decision
	}{
		{"judged review again, other bytes", pipeline.DecisionReview},
		{"passes the second time", pipeline.DecisionPass},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newStreams(t)
			q := &dieAfterStoring{Clerk: newClerk(t, st.js)}
			h := &changingJudge{second: c.second, calls: map[string]int{}}
			runPoolWith(t, st.js, h.judge, q)
			verdicts := subscribeVerdicts(t, st.nc, "daimon-1")

			id := publish(t, st.js, "daimon-1", "evt-twice", "maybe judged twice")
			var got *nats.Msg
			select {
			case got = <-verdicts:
			case <-time.After(10 * time.Second):
				t.Fatal("no verdict published")
			}
			if n := h.called("evt-twice"); n != 2 {
				t.Fatalf("judged %d times; want 2 (the thought delivered again)", n)
			}
			r, err := review.NewDesk(st.js).Review(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Data) != string(r.Verdict) {
				t.Errorf("published verdict\n%s\nthe review holds\n%s\nwant the same bytes", got.Data, r.Verdict)
			}
			if v, err := r.ReadVerdict(); err != nil || v.Decision != pipeline.DecisionUnavailable {
				t.Errorf("the review holds a %s verdict (%v); want the first, unavailable", v.Decision, err)
			}
			natstest.Eventually(t, 5*time.Second, func() bool { return q.pool.Stats().Processed >= 2 },
				func() string { return fmt.Sprintf("pool %+v; want the second delivery done", q.pool.Stats()) })
			if n := streamMsgs(t, st.js, consumers.StreamOutputs); n != 1 {
				t.Errorf("%d verdicts stored; want 1", n)
			}
			if n := streamMsgs(t, st.js, review.Stream); n != 1 {
				t.Errorf("%s holds %d messages; want 1", review.Stream, n)
			}
		})
	}
}

// changingJudge is a tribunal handler that judges a thought unavailable the
// first time and second (with other latency and time) the next.
type changingJudge struct {
	second pipeline.Decision
	mu     sync.Mutex
	calls  map[string]int
}

func (j *changingJudge) judge(_ context.Context, th pipeline.Thought) (pipeline.Output, error) {
	j.mu.Lock()
	j.calls[th.EventID]++
	n := j.calls[th.EventID]
	j.mu.Unlock()
	v := &pipeline.Verdict{Meta: pipeline.Meta{EventID: th.EventID, AgentID: th.AgentID, Stage: pipeline.StageTribunal, Model: "m", Provider: "p",
		LatencyMS: int64(1000 * n), CreatedAt: time.Date(2026, 1, 1, 0, 0, n, 0, time.UTC), Cached: n > 1},
		Decision: pipeline.DecisionUnavailable, OffenseLevel: pipeline.OffenseNone}
	if n > 1 {
		v.Decision, v.ConsensusScore = j.second, 0.6
		if j.second == pipeline.DecisionPass {
			v.ConsensusScore = 0.9
		}
	}
	v.RequiresHumanReview = v.Decision != pipeline.DecisionPass && v.Decision != pipeline.DecisionFail
	return v, nil
}

func (j *changingJudge) called(eventID string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.calls[eventID]
}

// dieAfterStoring is a Clerk whose worker dies once the first review is
// stored: the pool is told it failed, and the thought is delivered again.
type dieAfterStoring struct {
	*review.Clerk
	pool *consumers.Pool
	once sync.Once
}

func (q *dieAfterStoring) Queue(ctx context.Context, msg jetstream.Msg, verdict []byte) ([]byte, error) {
	held, err := q.Clerk.Queue(ctx, msg, verdict)
	died := false
	q.once.Do(func() { died = err == nil })
	if died {
		return nil, errors.New("the worker died before publishing the verdict")
	}
	return held, err
}

// runPoolWith runs a tribunal pool with handler h that queues its reviews
// in q until the test ends.
func runPoolWith(t *testing.T, js jetstream.JetStream, h pipeline.Handler, q *dieAfterStoring) {
	t.Helper()
	pool, err := consumers.NewPool(js, consumers.PoolConfig{Stage: pipeline.StageTribunal, RetryDelay: 10 * time.Millisecond}, h, zerolog.Nop(),
		consumers.WithReviews(q))
	if err != nil {
		t.Fatal(err)
	}
	q.pool = pool
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = pool.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
}

// subscribeVerdicts receives the verdicts published for agent.
func subscribeVerdicts(t *testing.T, nc *nats.Conn, agent string) <-chan *nats.Msg {
	t.Helper()
	verdicts := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe(consumers.OutputSubject(pipeline.StageTribunal, agent), verdicts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return verdicts
}

// A review stored long before under another message id (past the
// duplicate window: the stream refuses the second on its subject) gives
// its verdict to the thought judged again, when it decodes. One that does
// not is counted, and the verdict judged now is published: the thought is
// neither held nor dead-lettered.
func TestReviewStoredLongBeforeGivesItsVerdict(t *testing.T) {
	const agent, eventID, text = "daimon-1", "evt-early", "maybe drop the cache"
	before := `{"event_id":"evt-early","agent_id":"daimon-1","stage":"tribunal","latency_ms":7,"created_at":"2026-01-01T00:00:00Z","decision":"capital","requires_human_review":true}`
	cases := []struct {
		name   string
		stored []byte // the review stored before
		want   string // the decision of the verdict published
		counts uint64 // how many reviews the clerk could not read
	}{
		{"a verdict", storedReview(t, eventID, before), "capital", 0},
		{"not a review", []byte("not json"), "review", 1},
		{"not its own verdict", storedReview(t, eventID, `{}`), "review", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newStreams(t)
			data, _ := json.Marshal(pipeline.Thought{EventID: eventID, AgentID: agent, Content: pipeline.Content{UserInput: text, Depth: 1},
				Stages: []pipeline.Stage{pipeline.StageTribunal}})
			id := consumers.ThoughtDigest(consumers.ThoughtSubject(agent), data)
			if _, err := st.js.Publish(context.Background(), review.AgentQueuedSubject(agent, id), c.stored); err != nil {
				t.Fatal(err)
			}
			clerk := newClerk(t, st.js)
			pool := runPool(t, st.js, clerk)
			verdicts := subscribeVerdicts(t, st.nc, agent)
			publish(t, st.js, agent, eventID, text)
			var got *nats.Msg
			select {
			case got = <-verdicts:
			case <-time.After(10 * time.Second):
				t.Fatal("no verdict published")
			}
			var v pipeline.Verdict
			if err := json.Unmarshal(got.Data, &v); err != nil || string(v.Decision) != c.want {
				t.Errorf("published a %s verdict (%v); want %s", v.Decision, err, c.want)
			}
			if c.counts == 0 && string(got.Data) != before {
				t.Errorf("published %s; want the stored verdict %s", got.Data, before)
			}
			if n := clerk.Unreadable(); n != c.counts {
				t.Errorf("the clerk counted %d unreadable reviews; want %d", n, c.counts)
			}
			if s := pool.Stats(); s.Retried != 0 || s.DeadLettered != 0 {
				t.Errorf("pool %+v; want the verdict published at once", s)
			}
			if n := streamMsgs(t, st.js, review.Stream); n != 1 {
				t.Errorf("%s holds %d messages; want the one stored before", review.Stream, n)
			}
		})
	}
}

// storedReview is a review of the thought eventID of daimon-1 holding
// verdict, as stored a day ago.
func storedReview(t *testing.T, eventID, verdict string) []byte {
	t.Helper()
	data, err := json.Marshal(review.Review{ID: "0000000000000000", EventID: eventID, AgentID: "daimon-1", VerdictDecision: "capital",
		QueuedAt: time.Now().Add(-24 * time.Hour).UTC(), Verdict: json.RawMessage(verdict)})
	if err != nil {
		t.Fatal(err)
	}
	return data
}
