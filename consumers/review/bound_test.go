package review_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// One agent's flood of verdicts that require a person cannot take the room
// every agent's reviews need: alice may have three reviews waiting, and
// past them her verdicts are neither queued nor published (nothing approves
// by default), while bob's reviews are queued, his verdicts published, and
// his reviews decided. Without the bound alice's reviews fill the 96 KiB
// stream and bob's verdicts wait with hers.
func TestReviewFloodKeepsRoomForOtherAgents(t *testing.T) {
	const bound, flood = 3, 24
	st := newStreams(t)
	ctx := context.Background()
	cfg := review.Config{MaxBytes: 96 << 10, MaxPerAgent: bound}
	if err := review.Ensure(ctx, st.js, cfg); err != nil {
		t.Fatal(err)
	}
	clerk := review.NewClerk(st.js, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel))
	runPool(t, st.js, clerk)
	verdicts := map[string]chan *nats.Msg{"alice": make(chan *nats.Msg, flood), "bob": make(chan *nats.Msg, 4)}
	for agent, ch := range verdicts {
		sub, err := st.nc.ChanSubscribe(consumers.OutputSubject(pipeline.StageTribunal, agent), ch)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := st.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	padding := strings.Repeat("and then some more ", 8<<10/19) // 8 KiB: twelve reviews fill the stream
	for i := range flood {
		publish(t, st.js, "alice", fmt.Sprintf("alice-%02d", i), "maybe "+padding)
	}
	// Her flood is turned away: by her bound, or, without it, by a full stream.
	natstest.Eventually(t, 10*time.Second, func() bool { return clerk.Bounded() >= flood-bound || streamBytes(t, st.js) > cfg.MaxBytes-10<<10 },
		func() string {
			return fmt.Sprintf("%d of alice's reviews refused for her bound; want %d", clerk.Bounded(), flood-bound)
		})
	bobIDs := map[string]bool{}
	for i := range 2 {
		bobIDs[publish(t, st.js, "bob", fmt.Sprintf("bob-%d", i), "maybe restart the database "+padding)] = true
	}
	for i := range 2 {
		select {
		case <-verdicts["bob"]:
		case <-time.After(10 * time.Second):
			t.Fatalf("bob's verdict %d of 2 was not published after alice's flood of %d (%d refused for her bound)", i+1, flood, clerk.Bounded())
		}
	}

	byAgent := map[string]int{}
	for _, s := range load(t, st.js) {
		byAgent[s.AgentID]++
	}
	if byAgent["alice"] != bound || byAgent["bob"] != 2 {
		t.Fatalf("reviews queued: %v; want alice's %d and bob's 2", byAgent, bound)
	}
	if n := len(verdicts["alice"]); n != bound {
		t.Errorf("%d of alice's verdicts published; want only the %d whose reviews are queued", n, bound)
	}
	desk := review.NewDesk(st.js)
	for id := range bobIDs {
		if _, err := desk.Decide(ctx, id, review.Choice{Decision: review.Pass, Note: "fine", Reviewer: "carol"}); err != nil {
			t.Fatalf("bob's review %s: %v", id, err)
		}
	}

	// A decision makes room: alice's next review is queued.
	var aliceID string
	for _, s := range load(t, st.js) {
		if s.AgentID == "alice" {
			aliceID = s.ID
		}
	}
	if _, err := desk.Decide(ctx, aliceID, review.Choice{Decision: review.Fail, Note: "no", Reviewer: "carol"}); err != nil {
		t.Fatal(err)
	}
	publish(t, st.js, "alice", "alice-after", "maybe once more")
	select {
	case <-verdicts["alice"]:
	case <-time.After(10 * time.Second):
		t.Fatal("alice's verdict was not published once a decision left her under her bound")
	}
}

// streamBytes is how many bytes NOESIS_REVIEWS holds now.
func streamBytes(t *testing.T, js jetstream.JetStream) int64 {
	t.Helper()
	s, err := js.Stream(context.Background(), review.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int64(info.State.Bytes)
}

// The clerk's refusal says which agent, how many wait and the bound, reads
// as ErrAgentBound, and is permanent with no Retry-After: the pool
// dead-letters the thought at once rather than putting it back to wait on
// the consumer every agent shares.
func TestBoundErrorCarriesItsFacts(t *testing.T) {
	err := fmt.Errorf("queue review: %w", &review.BoundError{Agent: "alice", Waiting: 3, Bound: 3})
	var be *review.BoundError
	if !errors.Is(err, review.ErrAgentBound) || !errors.As(err, &be) || be.Agent != "alice" || be.Waiting != 3 {
		t.Fatalf("%v: not an ErrAgentBound with its facts", err)
	}
	if !errors.Is(err, pipeline.ErrPermanent) || errors.Is(err, pipeline.ErrTransient) {
		t.Fatalf("%v: not permanent", err)
	}
	if after, ok := pipeline.RetryAfter(err); ok {
		t.Fatalf("retry after %s; want none: the thought is dead-lettered", after)
	}
	if !strings.Contains(err.Error(), "NOESIS_AGENT_MAX_REVIEWS") {
		t.Errorf("%q does not name the setting", err)
	}
}
