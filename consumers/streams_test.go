package consumers_test

import (
	"context"
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
