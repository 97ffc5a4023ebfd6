package consumers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
)

// A hostile agent's flood of bad input drops only its own oldest dead
// letters: alice keeps her newest four, and bob's letters, written after
// her flood, are stored, announced to him and replayable. Without the bound
// alice's 40 KiB letters fill the 1 MiB stream, and bob's thoughts wait,
// nak'd, with no letter.
func TestDeadLetterFloodKeepsOtherAgentsLetters(t *testing.T) {
	const bound, flood = 4, 40
	ctx, js := withStreamsConfig(t, consumers.StreamsConfig{DLQMaxBytes: 1 << 20, MaxDeadLettersPerAgent: bound})
	narr := runPool(t, js, consumers.PoolConfig{Stage: pipeline.StageNarrative, MaxDeliver: 100, RetryDelay: 20 * time.Millisecond}, echo(pipeline.StageNarrative))
	notices, err := js.Conn().SubscribeSync(consumers.NoticeSubject("bob"))
	if err != nil {
		t.Fatal(err)
	}
	badThought := func(agent string, i int) {
		t.Helper() // bad input: an agent_id that is not its subject's
		data := thoughtJSON(t, fmt.Sprintf("%s-%02d", agent, i), "mallory", strings.Repeat("b", 40<<10))
		if _, err := js.Publish(ctx, consumers.ThoughtSubject(agent), data); err != nil {
			t.Fatal(err)
		}
	}
	for i := range flood {
		badThought("alice", i)
	}
	dlqBytes := func() uint64 { return streamInfo(t, js, consumers.StreamDLQ).State.Bytes }
	// Her flood is through: every letter stored, or, without the bound, the stream full.
	natstest.Eventually(t, 20*time.Second, func() bool { return narr.Stats().DeadLettered >= flood || dlqBytes() > 1<<20-50<<10 },
		func() string { return fmt.Sprintf("pool %+v, %d bytes of letters", narr.Stats(), dlqBytes()) })
	for i := range 2 {
		badThought("bob", i)
	}
	var bob, alice []consumers.Letter
	natstest.Eventually(t, 10*time.Second, func() bool {
		letters, err := consumers.ListLetters(ctx, js, "")
		if err != nil {
			t.Fatal(err)
		}
		bob, alice = nil, nil
		for _, l := range letters {
			switch l.Subject {
			case consumers.ThoughtSubject("bob"):
				bob = append(bob, l)
			case consumers.ThoughtSubject("alice"):
				alice = append(alice, l)
			}
		}
		return len(bob) == 2
	}, func() string {
		return fmt.Sprintf("bob has %d letters of 2 after alice's flood of %d (she holds %d); pool %+v", len(bob), flood, len(alice), narr.Stats())
	})
	if len(alice) != bound {
		t.Fatalf("alice holds %d letters; want her bound, %d", len(alice), bound)
	}
	kept := map[string]bool{}
	for _, l := range alice { // the last written, in whatever order the workers took them
		kept[string(l.Data)] = true
		if l.Stage != consumers.StageInput {
			t.Errorf("alice's letter %d: stage %s; want %s", l.DLQSeq, l.Stage, consumers.StageInput)
		}
	}
	if len(kept) != bound {
		t.Errorf("alice's %d letters are of %d thoughts; want one each", len(alice), len(kept))
	}
	for range bob {
		if m, err := notices.NextMsg(5 * time.Second); err != nil || !strings.Contains(string(m.Data), `"agent_id":"bob"`) {
			t.Fatalf("bob's notice: %v", err)
		}
	}
	if _, err := consumers.Replay(ctx, js, bob[0]); err != nil {
		t.Fatalf("replay bob's letter: %v", err)
	}
}

// A deployment's NOESIS_DLQ, made before the bound per agent, gets it at
// the next start, and drops none of its letters: those of releases that kept
// a stage's letters on one subject raise the bound until they are gone.
func TestEnsureStreamsBoundsAnOlderDLQ(t *testing.T) {
	js := natstest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createUnbounded(ctx, t, js, consumers.StreamDLQ)
	bound := func() int64 {
		t.Helper()
		if err := consumers.EnsureStreams(ctx, js, consumers.StreamsConfig{MaxDeadLettersPerAgent: 2}); err != nil {
			t.Fatal(err)
		}
		return streamInfo(t, js, consumers.StreamDLQ).Config.MaxMsgsPerSubject
	}
	legacy := consumers.StoreSubject(consumers.DLQSubject(pipeline.StageNarrative))
	for i := range 3 {
		if _, err := js.Publish(ctx, legacy, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if got, msgs := bound(), streamInfo(t, js, consumers.StreamDLQ).State.Msgs; got != 3 || msgs != 3 {
		t.Fatalf("with three letters on a stage's one subject: bound %d, %d letters; want 3 and 3", got, msgs)
	}
	s, err := js.Stream(ctx, consumers.StreamDLQ)
	if err == nil { // the operator replays them
		err = s.Purge(ctx, jetstream.WithPurgeSubject(legacy))
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := bound(); got != 2 {
		t.Fatalf("bound %d once the older letters are gone; want 2", got)
	}
}

// The guard watches every stream EnsureStreams sets up: each one deleted is
// reported missing and set up again, NOESIS_DLQ_KEYS included (without it a
// deleted key stream stayed gone until the next start, and letters written
// again after the duplicate window were stored twice meanwhile).
func TestGuardSetsUpEveryStreamAgain(t *testing.T) {
	cfg := consumers.StreamsConfig{}
	ctx, js := withStreamsConfig(t, cfg)
	if err := consumers.EnsureAdvisoryStream(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	g := consumers.NewGuard(js, cfg, zerolog.Nop())
	for _, sc := range consumers.StreamConfigs(cfg) {
		if err := js.DeleteStream(ctx, sc.Name); err != nil {
			t.Fatal(err)
		}
		if h := g.Check(ctx); !slices.Contains(h.MissingStreams, sc.Name) {
			t.Errorf("%s deleted; the guard found missing only %v", sc.Name, h.MissingStreams)
		}
		if _, err := js.Stream(ctx, sc.Name); err != nil {
			t.Errorf("%s not set up again: %v", sc.Name, err)
		}
	}
}

// A thought that cannot be read gets a letter of its own when it takes the
// sequence of an older one, NOESIS_THOUGHTS deleted and made again (the
// guard does): by its sequence alone it was taken for the older thought,
// whose letter was stored, and it was lost.
func TestLetterAfterTheThoughtsStreamIsMadeAgain(t *testing.T) {
	ctx, js := withStreams(t)
	store := func(data string) {
		t.Helper()
		l := consumers.Letter{Stage: consumers.StageInput, Subject: consumers.ThoughtsPrefix + "alice", Seq: 1, Attempts: 1,
			Reason: "invalid JSON", Data: []byte(data)}
		if err := consumers.StoreLetter(ctx, js, l); err != nil {
			t.Fatal(err)
		}
	}
	store("{first")
	store("{first") // the same thought again: one letter
	if err := js.DeleteStream(ctx, consumers.StreamThoughts); err != nil {
		t.Fatal(err)
	}
	if err := consumers.EnsureStreams(ctx, js, consumers.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	store("{second") // sequence 1 of the stream made again
	s, err := js.Stream(ctx, consumers.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().State.Msgs; got != 2 {
		t.Fatalf("%d letters stored, want 2: one per thought", got)
	}
}
