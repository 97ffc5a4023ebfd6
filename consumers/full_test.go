package consumers_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
)

// A full thoughts stream refuses a thought at publish, with an error that
// says so, and a replay (keeping its letter); it keeps every thought it took:
// each still gets its output.
func TestAFullThoughtsStreamRefusesAtPublishAndLosesNothing(t *testing.T) {
	ctx, js := withStreamsConfig(t, consumers.StreamsConfig{ThoughtsMaxBytes: 32 << 10})
	text := strings.Repeat("x", 1<<10)
	stored := 0
	var refusal error
	for i := 0; i < 100 && refusal == nil; i++ {
		_, err := js.Publish(ctx, consumers.ThoughtSubject("a1"), thoughtJSON(t, fmt.Sprint("full-", i), "a1", text, pipeline.StageNarrative))
		if err != nil {
			refusal = consumers.PublishError(consumers.StreamThoughts, err)
			break
		}
		stored++
	}
	if refusal == nil {
		t.Fatalf("100 thoughts of 1 KiB stored in a 32 KiB stream: nothing refused")
	}
	var full *consumers.FullError
	if !errors.Is(refusal, consumers.ErrStreamFull) || !errors.As(refusal, &full) || full.Stream != consumers.StreamThoughts ||
		!strings.Contains(refusal.Error(), "noesis is full: NOESIS_THOUGHTS") || !strings.Contains(refusal.Error(), "maximum bytes exceeded") {
		t.Fatalf("refusal %q does not say the thoughts stream is full", refusal)
	}
	// A replay is refused too, and its letter kept.
	letter := consumers.Letter{Stage: pipeline.StageNarrative, Subject: consumers.ThoughtSubject("a1"), Seq: 1, Attempts: 5, Reason: "test",
		Data: thoughtJSON(t, "full-0", "a1", text, pipeline.StageNarrative)}
	if err := consumers.StoreLetter(ctx, js, letter); err != nil {
		t.Fatal(err)
	}
	letters, err := consumers.ListLetters(ctx, js, "")
	if err != nil || len(letters) != 1 {
		t.Fatalf("%d letters, %v", len(letters), err)
	}
	if _, err := consumers.Replay(ctx, js, letters[0]); !errors.Is(err, consumers.ErrStreamFull) {
		t.Fatalf("replay into a full thoughts stream: %v", err)
	}
	if kept, _ := consumers.ListLetters(ctx, js, ""); len(kept) != 1 {
		t.Fatalf("the letter of a refused replay was removed")
	}
	narr := runPool(t, js, consumers.PoolConfig{Stage: pipeline.StageNarrative}, echo(pipeline.StageNarrative))
	natstest.Eventually(t, 10*time.Second, func() bool { return narr.Stats().Published == uint64(stored) },
		func() string { return fmt.Sprintf("%d stored thoughts, pool %+v", stored, narr.Stats()) })
	if info := streamInfo(t, js, consumers.StreamThoughts); info.State.Msgs != uint64(stored) {
		t.Fatalf("the thoughts stream holds %d of the %d it took", info.State.Msgs, stored)
	}
	t.Logf("%d thoughts of 1 KiB stored, the next refused: %v", stored, refusal)
}

// An output the stream refuses for want of room (here an outputs stream an
// operator set to discard new, as an account's storage limit would refuse
// it too) is not the thought's fault: the worker holds the thought, unacked
// and spending none of its deliveries, and publishes its output once there
// is room. Nothing is dead-lettered.
func TestAnOutputRefusedForRoomHoldsItsThought(t *testing.T) {
	ctx, js := withStreams(t)
	outputs, err := js.Stream(ctx, consumers.StreamOutputs)
	if err != nil {
		t.Fatal(err)
	}
	strict := outputs.CachedInfo().Config
	strict.MaxBytes, strict.Discard = 2<<10, jetstream.DiscardNew
	if _, err := js.UpdateStream(ctx, strict); err != nil {
		t.Fatal(err)
	}
	narr := runPool(t, js, consumers.PoolConfig{Stage: pipeline.StageNarrative, MaxDeliver: 2, RetryDelay: 10 * time.Millisecond}, echo(pipeline.StageNarrative))
	const n = 6
	for i := 0; i < n; i++ {
		if _, err := js.Publish(ctx, consumers.ThoughtSubject("a1"), thoughtJSON(t, fmt.Sprint("held-", i), "a1", strings.Repeat("y", 600), pipeline.StageNarrative)); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.Consumer(ctx, consumers.StreamThoughts, string(pipeline.StageNarrative))
	if err != nil {
		t.Fatal(err)
	}
	state := func() string {
		info, _ := cons.Info(ctx)
		return fmt.Sprintf("pool %+v; consumer: %d unacked, %d redelivered, ack floor %d", narr.Stats(), info.NumAckPending, info.NumRedelivered, info.AckFloor.Stream)
	}
	// Held through several refusals, past the two deliveries it is allowed.
	natstest.Eventually(t, 20*time.Second, func() bool {
		return narr.Stats().FullWaits >= 3*(n-narr.Stats().Published) && narr.Stats().Published < n
	}, state)
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if held := uint64(n) - narr.Stats().Published; uint64(info.NumAckPending) != held || info.NumRedelivered != 0 || narr.Stats().Retried != 0 {
		t.Fatalf("held thoughts must stay unacked and undelivered again: %s", state())
	}
	if letters, _ := consumers.ListLetters(ctx, js, ""); len(letters) != 0 {
		t.Fatalf("%d thoughts dead-lettered for want of room", len(letters))
	}
	// Room appears: every held thought gets its output, once, and is acked.
	strict.MaxBytes = 1 << 20
	if _, err := js.UpdateStream(ctx, strict); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 40*time.Second, func() bool {
		info, err := cons.Info(ctx)
		return err == nil && narr.Stats().Published == n && info.NumAckPending == 0 && info.AckFloor.Stream == n
	}, state)
	if st := narr.Stats(); st.DeadLettered != 0 || st.Duplicates != 0 {
		t.Fatalf("after room appeared: %s", state())
	}
}

// A full outputs stream drops its oldest outputs, each republished to its
// agent when it was stored: the workers go on, and every thought gets its
// output.
func TestAFullOutputsStreamDropsItsOldest(t *testing.T) {
	ctx, js := withStreamsConfig(t, consumers.StreamsConfig{OutputsMaxBytes: 8 << 10})
	narr := runPool(t, js, consumers.PoolConfig{Stage: pipeline.StageNarrative}, echo(pipeline.StageNarrative))
	const n = 40
	for i := 0; i < n; i++ {
		if _, err := js.Publish(ctx, consumers.ThoughtSubject("a1"), thoughtJSON(t, fmt.Sprint("out-", i), "a1", strings.Repeat("z", 500), pipeline.StageNarrative)); err != nil {
			t.Fatal(err)
		}
	}
	natstest.Eventually(t, 10*time.Second, func() bool { return narr.Stats().Published == n },
		func() string { return fmt.Sprintf("pool %+v", narr.Stats()) })
	info := streamInfo(t, js, consumers.StreamOutputs)
	if info.State.Bytes > 8<<10 || info.State.Msgs == 0 || info.State.Msgs == n || info.State.LastSeq != n {
		t.Fatalf("outputs stream: %d bytes, %d outputs, last %d; want at most 8 KiB, the newest kept", info.State.Bytes, info.State.Msgs, info.State.LastSeq)
	}
	if narr.Stats().DeadLettered != 0 || narr.Stats().FullWaits != 0 {
		t.Fatalf("pool %+v", narr.Stats())
	}
}

// A full dead-letter stream keeps the letters it holds and refuses new ones;
// the thought whose letter was refused is not terminated but tried again,
// and its letter is stored once there is room.
func TestAFullDLQKeepsItsLettersAndTheThoughtWaits(t *testing.T) {
	const n = 8
	// One agent's letters fill it: its bound per agent is above them.
	ctx, js := withStreamsConfig(t, consumers.StreamsConfig{DLQMaxBytes: 4 << 10, MaxDeadLettersPerAgent: n})
	narr := runPool(t, js, consumers.PoolConfig{Stage: pipeline.StageNarrative, MaxDeliver: 100, RetryDelay: 20 * time.Millisecond}, echo(pipeline.StageNarrative))
	for i := 0; i < n; i++ { // bad input: an agent_id that is not its subject's
		if _, err := js.Publish(ctx, consumers.ThoughtSubject("a1"), thoughtJSON(t, fmt.Sprint("bad-", i), "mallory", strings.Repeat("b", 700))); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.Consumer(ctx, consumers.StreamThoughts, string(pipeline.StageNarrative))
	if err != nil {
		t.Fatal(err)
	}
	var first []consumers.Letter
	natstest.Eventually(t, 10*time.Second, func() bool {
		info, err := cons.Info(ctx)
		first, _ = consumers.ListLetters(ctx, js, "")
		return err == nil && info.NumRedelivered > 0 && len(first) > 0 && len(first) < n
	}, func() string { return fmt.Sprintf("%d letters in a 4 KiB DLQ, pool %+v", len(first), narr.Stats()) })
	// Room appears (an operator raises the bound, or letters are replayed or age out).
	dlq, err := js.Stream(ctx, consumers.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	cfg := dlq.CachedInfo().Config
	cfg.MaxBytes = 1 << 20
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	var all []consumers.Letter
	natstest.Eventually(t, 20*time.Second, func() bool {
		info, err := cons.Info(ctx)
		all, _ = consumers.ListLetters(ctx, js, "")
		return err == nil && len(all) == n && info.NumAckPending == 0 && info.NumPending == 0
	}, func() string { return fmt.Sprintf("%d letters once there was room, pool %+v", len(all), narr.Stats()) })
	for i, l := range first {
		if all[i].DLQSeq != l.DLQSeq || all[i].Stage != consumers.StageInput {
			t.Fatalf("letter %d before the room: %+v, after: %+v", i, l, all[i])
		}
	}
}

// One agent past its quota of thoughts held is refused at publish, with an
// error that says so; another agent's thoughts are still taken.
func TestAnAgentPastItsQuotaOfThoughtsIsRefusedAlone(t *testing.T) {
	ctx, js := withStreamsConfig(t, consumers.StreamsConfig{MaxThoughtsPerAgent: 5})
	for i := 0; i < 5; i++ {
		if _, err := js.Publish(ctx, consumers.ThoughtSubject("flood"), thoughtJSON(t, fmt.Sprint("f-", i), "flood", "x", pipeline.StageNarrative)); err != nil {
			t.Fatalf("thought %d of 5: %v", i, err)
		}
	}
	_, err := js.Publish(ctx, consumers.ThoughtSubject("flood"), thoughtJSON(t, "f-5", "flood", "x", pipeline.StageNarrative))
	refusal := consumers.PublishError(consumers.StreamThoughts, err)
	var full *consumers.FullError
	if !errors.As(refusal, &full) || !full.Agent || !strings.Contains(refusal.Error(), "this agent holds its quota of thoughts") {
		t.Fatalf("the sixth thought: %v", refusal)
	}
	if _, err := js.Publish(ctx, consumers.ThoughtSubject("quiet"), thoughtJSON(t, "q-0", "quiet", "x", pipeline.StageNarrative)); err != nil {
		t.Fatalf("another agent's thought was refused: %v", err)
	}
}
