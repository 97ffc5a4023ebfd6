package review_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/pipeline"
)

// stack is a NATS server with noesis's streams and NOESIS_REVIEWS, and a
// tribunal pool whose handler decides from the thought's text (no model:
// the pool, the publish, the clerk and the streams are the real ones).
type stack struct {
	ns *server.Server
	nc *nats.Conn
	js jetstream.JetStream
}

// decideByText is a tribunal handler: a thought saying "capital" gets a
// capital verdict, "maybe" a review, anything else a pass.
func decideByText(_ context.Context, th pipeline.Thought) (pipeline.Output, error) {
	v := &pipeline.Verdict{Meta: pipeline.Meta{EventID: th.EventID, AgentID: th.AgentID, Stage: pipeline.StageTribunal, Model: "m", Provider: "p"},
		Decision: pipeline.DecisionPass, ConsensusScore: 0.9, OffenseLevel: pipeline.OffenseNone,
		Judges: []pipeline.JudgeVote{{Name: "VERITAS", Pillar: "truth", Verdict: "PASS", Confidence: 0.6, Weight: 1, Reasoning: "<b>it holds</b>", Offense: pipeline.OffenseNone}}}
	switch text := th.Content.UserInput; {
	case strings.Contains(text, "capital"):
		v.Decision, v.OffenseLevel = pipeline.DecisionCapital, pipeline.OffenseCapital
	case strings.Contains(text, "maybe"):
		v.Decision, v.ConsensusScore = pipeline.DecisionReview, 0.6
	}
	v.RequiresHumanReview = v.Decision != pipeline.DecisionPass && v.Decision != pipeline.DecisionFail
	return v, nil
}

// newStack starts the server and a tribunal pool that queues its reviews
// through a Clerk.
func newStack(t *testing.T) *stack {
	t.Helper()
	st := newStreams(t)
	runPool(t, st.js, newClerk(t, st.js))
	return st
}

// newStreams starts the server with the streams, and no pool.
func newStreams(t *testing.T) *stack {
	t.Helper()
	ns := natstest.RunServer(t)
	nc, js := natstest.Connect(t, ns)
	if err := consumers.EnsureStreams(context.Background(), js, consumers.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := review.Ensure(context.Background(), js, review.Config{}); err != nil {
		t.Fatal(err)
	}
	return &stack{ns: ns, nc: nc, js: js}
}

func newClerk(t *testing.T, js jetstream.JetStream) *review.Clerk {
	return review.NewClerk(js, review.Config{}, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
}

// runPool runs a tribunal pool that queues its reviews in q until the test ends.
func runPool(t *testing.T, js jetstream.JetStream, q consumers.ReviewQueue) *consumers.Pool {
	t.Helper()
	pool, err := consumers.NewPool(js, consumers.PoolConfig{Stage: pipeline.StageTribunal, RetryDelay: 10 * time.Millisecond}, decideByText, zerolog.Nop(),
		consumers.WithReviews(q))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = pool.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	return pool
}

// publish publishes a thought of agent with text and returns its digest:
// the id of its review, if it has one.
func publish(t *testing.T, js jetstream.JetStream, agent, eventID, text string) string {
	t.Helper()
	data, _ := json.Marshal(pipeline.Thought{EventID: eventID, AgentID: agent, Content: pipeline.Content{UserInput: text, Depth: 1},
		Stages: []pipeline.Stage{pipeline.StageTribunal}})
	if _, err := js.Publish(context.Background(), consumers.ThoughtSubject(agent), data); err != nil {
		t.Fatal(err)
	}
	return consumers.ThoughtDigest(consumers.ThoughtSubject(agent), data)
}

// load reads the whole review stream now.
func load(t *testing.T, js jetstream.JetStream) []review.Summary {
	t.Helper()
	x, err := review.Load(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	return x.List(false)
}

// waitReviews waits until the stream holds n reviews and returns them.
func waitReviews(t *testing.T, js jetstream.JetStream, n int, within time.Duration) []review.Summary {
	t.Helper()
	var got []review.Summary
	natstest.Eventually(t, within, func() bool { got = load(t, js); return len(got) >= n },
		func() string { return "reviews: " + summaries(got) })
	return got
}

func summaries(ss []review.Summary) string {
	var b strings.Builder
	for _, s := range ss {
		b.WriteString(s.ID + "/" + s.EventID + "/" + s.VerdictDecision + " ")
	}
	return b.String()
}

// streamMsgs is how many messages stream holds now.
func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// outputConsumers names the consumers on NOESIS_OUTPUTS.
func outputConsumers(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	s, err := js.Stream(context.Background(), consumers.StreamOutputs)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	lister := s.ConsumerNames(context.Background())
	for name := range lister.Name() {
		names = append(names, name)
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}
