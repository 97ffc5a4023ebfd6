package consumers_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/shared"
	"github.com/noesis-dev/noesis/pipeline"
)

func TestEnsureStreamsConcurrentAndIdempotent(t *testing.T) {
	ns := natstest.RunServer(t)
	cfg := consumers.StreamsConfig{DuplicateWindow: 2 * time.Minute}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ { // eight processes starting at once
		_, js := natstest.Connect(t, ns)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := consumers.EnsureStreams(context.Background(), js, cfg); err != nil {
				errs <- err
			}
			pool, err := consumers.NewPool(js, consumers.PoolConfig{Stage: pipeline.StageTribunal, Concurrency: 4}, nil, zerolog.Nop())
			if err == nil {
				_, err = pool.EnsureConsumer(context.Background())
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent start: %v", err)
	}
	_, js := natstest.Connect(t, ns)
	for _, want := range consumers.StreamConfigs(cfg) {
		s, err := js.Stream(context.Background(), want.Name)
		if err != nil {
			t.Fatal(err)
		}
		info := s.CachedInfo()
		window := 2 * time.Minute
		if want.Name == consumers.StreamThoughts {
			window = 0 // message ids are not trusted across agents
		}
		if info.Config.Duplicates != window {
			t.Errorf("%s duplicate window %s", want.Name, info.Config.Duplicates)
		}
	}
	// A restart with a longer window updates the streams in place.
	if err := consumers.EnsureStreams(context.Background(), js, consumers.StreamsConfig{DuplicateWindow: 20 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	s, _ := js.Stream(context.Background(), consumers.StreamOutputs)
	if d := s.CachedInfo().Config.Duplicates; d != 20*time.Minute {
		t.Errorf("window not updated: %s", d)
	}
	c, err := js.Consumer(context.Background(), consumers.StreamThoughts, "tribunal")
	if err != nil {
		t.Fatal(err)
	}
	if ci := c.CachedInfo(); ci.Config.AckPolicy != jetstream.AckExplicitPolicy || ci.Config.MaxAckPending != 16 || ci.Config.MaxDeliver != 5 {
		t.Errorf("consumer config %+v", ci.Config)
	}
}

// A worker that starts against streams and buckets already set up as it
// would set them up changes nothing: JetStream announces every stream update, and there is
// none. (Eight workers starting together used to update every stream eight
// times over, racing the server's own consumer creation.) A changed setting
// is still an update.
func TestEnsureStreamsLeavesUnchangedStreamsAlone(t *testing.T) {
	ns := natstest.RunServer(t)
	nc, js := natstest.Connect(t, ns)
	cfg := consumers.StreamsConfig{DuplicateWindow: 2 * time.Minute}
	start := func() {
		t.Helper()
		if err := consumers.EnsureStreams(context.Background(), js, cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := shared.NewRegistry(context.Background(), js, cfg.Buckets(), time.Second); err != nil { // a key-value bucket
			t.Fatal(err)
		}
	}
	start()
	updates, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.>")
	if err != nil {
		t.Fatal(err)
	}
	start()
	cfg.DuplicateWindow = 3 * time.Minute // the replays, outputs, dead letters (and their keys), transcripts and notices streams change; thoughts has no window
	if err := consumers.EnsureStreams(context.Background(), js, cfg); err != nil {
		t.Fatal(err)
	}
	// The streams are updated in order, NOESIS_DLQ_NOTICES last: an update
	// of an unchanged stream, by either start, comes before its advisory.
	last := "$JS.EVENT.ADVISORY.STREAM.UPDATED." + consumers.StreamNotices
	var updated []string
	for len(updated) == 0 || updated[len(updated)-1] != last {
		m, err := updates.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no update of %s within 10 s (updates so far: %v): %v", consumers.StreamNotices, updated, err)
		}
		updated = append(updated, m.Subject)
	}
	want := []string{"$JS.EVENT.ADVISORY.STREAM.UPDATED." + consumers.StreamReplays, "$JS.EVENT.ADVISORY.STREAM.UPDATED." + consumers.StreamOutputs,
		"$JS.EVENT.ADVISORY.STREAM.UPDATED." + consumers.StreamDLQ, "$JS.EVENT.ADVISORY.STREAM.UPDATED." + consumers.StreamLetterKeys,
		"$JS.EVENT.ADVISORY.STREAM.UPDATED." + consumers.StreamTranscripts,
		"$JS.EVENT.ADVISORY.STREAM.UPDATED." + consumers.StreamNotices}
	if strings.Join(updated, " ") != strings.Join(want, " ") {
		t.Errorf("stream updates: %v, want only the changed window's: %v", updated, want)
	}
}

func TestSubjects(t *testing.T) {
	cases := map[string]string{
		consumers.ThoughtSubject("a1"):                                               "noesis.thoughts.a1",
		consumers.OutputSubject(pipeline.StageNarrative, "a1"):                       "noesis.narratives.a1",
		consumers.OutputSubject(pipeline.StageTribunal, "a1"):                        "noesis.verdicts.a1",
		consumers.OutputSubject(pipeline.StageAnalysis, "a1"):                        "noesis.analyses.a1",
		consumers.DLQSubject(pipeline.StageTribunal):                                 "noesis.dlq.tribunal",
		consumers.StoreSubject(consumers.OutputSubject(pipeline.StageTribunal, "a")): "_noesis.store.verdicts.a",
		consumers.OutputMsgID("e1", pipeline.StageTribunal, "00ff"):                  "e1:tribunal:00ff",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestPoolConfigValidate(t *testing.T) {
	bad := []consumers.PoolConfig{
		{Stage: "poetry"},
		{Stage: pipeline.StageNarrative, Concurrency: 10, MaxAckPending: 5},
		{Stage: pipeline.StageNarrative, MaxDeliver: -1},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
}

// One agent's flood of transcripts, or of one stage's outputs, replaces its
// own oldest, not another agent's: NOESIS_TRANSCRIPTS and NOESIS_OUTPUTS
// bound each agent's subject. Without the bound the flood fills the
// stream's bytes and the stream drops its oldest, bob's among them.
func TestFloodKeepsOtherAgents(t *testing.T) {
	const perAgent, flood = 8, 60
	for _, c := range []struct {
		stream  string
		subject func(agent string) string
		cfg     consumers.StreamsConfig
	}{
		// 48 KiB: room for bob's three and alice's eight, not for alice's sixty.
		{consumers.StreamTranscripts, func(a string) string { return consumers.StoreSubject(consumers.TranscriptSubject(a)) },
			consumers.StreamsConfig{TranscriptsMaxBytes: 48 << 10, MaxTranscriptsPerAgent: perAgent}},
		{consumers.StreamOutputs, func(a string) string {
			return consumers.StoreSubject(consumers.OutputSubject(pipeline.StageTribunal, a))
		},
			consumers.StreamsConfig{OutputsMaxBytes: 48 << 10, MaxOutputsPerAgent: perAgent}},
	} {
		t.Run(c.stream, func(t *testing.T) { floodKeepsOtherAgents(t, c.stream, c.subject, c.cfg, perAgent, flood) })
	}
}

func floodKeepsOtherAgents(t *testing.T, stream string, subject func(agent string) string, cfg consumers.StreamsConfig, perAgent, flood int) {
	js := natstest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := consumers.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	body := func(agent string, i int) []byte {
		return append([]byte(fmt.Sprintf("%s-%03d ", agent, i)), bytes.Repeat([]byte("x"), 1<<10)...)
	}
	publish := func(agent string, n int) {
		t.Helper()
		for i := range n {
			if _, err := js.Publish(ctx, subject(agent), body(agent, i)); err != nil {
				t.Fatalf("%s's message %d: %v", agent, i, err)
			}
		}
	}
	publish("bob", 3)
	publish("alice", flood)

	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	read := func(agent string) [][]byte {
		t.Helper()
		c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject(agent)}})
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject(agent)))
		if err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		for range info.State.Subjects[subject(agent)] {
			m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
			if err != nil {
				t.Fatalf("%s's messages: %v", agent, err)
			}
			got = append(got, m.Data())
		}
		return got
	}
	bob := read("bob")
	if len(bob) != 3 {
		t.Fatalf("bob holds %d messages after alice's flood of %d, want his 3", len(bob), flood)
	}
	for i, b := range bob {
		if !bytes.Equal(b, body("bob", i)) {
			t.Errorf("bob's message %d is %.12q", i, b)
		}
	}
	alice := read("alice")
	if len(alice) != perAgent {
		t.Fatalf("alice holds %d messages, want her bound, %d", len(alice), perAgent)
	}
	for i, b := range alice { // her newest, in order
		if want := body("alice", flood-perAgent+i); !bytes.Equal(b, want) {
			t.Errorf("alice's message %d is %.12q, want %.12q", i, b, want)
		}
	}
}

// A deployment's NOESIS_TRANSCRIPTS and NOESIS_OUTPUTS, made before their
// bounds per agent, get them at the next start, and keep each agent's newest.
func TestEnsureStreamsBoundsOlderStreams(t *testing.T) {
	for stream, subject := range map[string]string{
		consumers.StreamTranscripts: consumers.StoreSubject(consumers.TranscriptSubject("alice")),
		consumers.StreamOutputs:     consumers.StoreSubject(consumers.OutputSubject(pipeline.StageNarrative, "alice")),
	} {
		t.Run(stream, func(t *testing.T) {
			js := natstest.JetStream(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			createUnbounded(ctx, t, js, stream)
			for i := range 5 {
				if _, err := js.Publish(ctx, subject, []byte(fmt.Sprint(i))); err != nil {
					t.Fatal(err)
				}
			}
			if err := consumers.EnsureStreams(ctx, js, consumers.StreamsConfig{MaxTranscriptsPerAgent: 2, MaxOutputsPerAgent: 2}); err != nil {
				t.Fatal(err)
			}
			s, err := js.Stream(ctx, stream)
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.Config.MaxMsgsPerSubject != 2 || info.State.Msgs != 2 {
				t.Fatalf("after the start: bound %d, %d messages; want 2 and 2", info.Config.MaxMsgsPerSubject, info.State.Msgs)
			}
			if m, err := s.GetLastMsgForSubject(ctx, subject); err != nil || string(m.Data) != "4" {
				t.Fatalf("alice's last message: %v, %v; want her newest, 4", m, err)
			}
		})
	}
}
