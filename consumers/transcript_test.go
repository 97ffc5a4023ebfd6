package consumers_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
)

// One agent's flood of transcripts replaces its own oldest, not another
// agent's: NOESIS_TRANSCRIPTS bounds each agent's subject. Without the bound
// the flood fills the stream's bytes and the stream drops its oldest, bob's
// among them.
func TestTranscriptFloodKeepsOtherAgents(t *testing.T) {
	const perAgent, flood = 8, 60
	js := natstest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// 48 KiB: room for bob's three and alice's eight, not for alice's sixty.
	cfg := consumers.StreamsConfig{TranscriptsMaxBytes: 48 << 10, MaxTranscriptsPerAgent: perAgent}
	if err := consumers.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	body := func(agent string, i int) []byte {
		return append([]byte(fmt.Sprintf("%s-%03d ", agent, i)), bytes.Repeat([]byte("x"), 1<<10)...)
	}
	publish := func(agent string, n int) {
		t.Helper()
		for i := range n {
			if _, err := js.Publish(ctx, consumers.StoreSubject(consumers.TranscriptSubject(agent)), body(agent, i)); err != nil {
				t.Fatalf("%s's transcript %d: %v", agent, i, err)
			}
		}
	}
	publish("bob", 3)
	publish("alice", flood)

	s, err := js.Stream(ctx, consumers.StreamTranscripts)
	if err != nil {
		t.Fatal(err)
	}
	read := func(agent string) [][]byte {
		t.Helper()
		c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{consumers.StoreSubject(consumers.TranscriptSubject(agent))}})
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(consumers.StoreSubject(consumers.TranscriptSubject(agent))))
		if err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		for range info.State.Subjects[consumers.StoreSubject(consumers.TranscriptSubject(agent))] {
			m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
			if err != nil {
				t.Fatalf("%s's transcripts: %v", agent, err)
			}
			got = append(got, m.Data())
		}
		return got
	}
	bob := read("bob")
	if len(bob) != 3 {
		t.Fatalf("bob holds %d transcripts after alice's flood of %d, want his 3", len(bob), flood)
	}
	for i, b := range bob {
		if !bytes.Equal(b, body("bob", i)) {
			t.Errorf("bob's transcript %d is %.12q", i, b)
		}
	}
	alice := read("alice")
	if len(alice) != perAgent {
		t.Fatalf("alice holds %d transcripts, want her bound, %d", len(alice), perAgent)
	}
	for i, b := range alice { // her newest, in order
		if want := body("alice", flood-perAgent+i); !bytes.Equal(b, want) {
			t.Errorf("alice's transcript %d is %.12q, want %.12q", i, b, want)
		}
	}
}

// A deployment's NOESIS_TRANSCRIPTS, made before the bound per agent, gets
// it at the next start, and keeps each agent's newest.
func TestEnsureStreamsBoundsAnOlderTranscriptsStream(t *testing.T) {
	js := natstest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createUnbounded(ctx, t, js, consumers.StreamTranscripts)
	subject := consumers.StoreSubject(consumers.TranscriptSubject("alice"))
	for i := range 5 {
		if _, err := js.Publish(ctx, subject, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := consumers.EnsureStreams(ctx, js, consumers.StreamsConfig{MaxTranscriptsPerAgent: 2}); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, consumers.StreamTranscripts)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxMsgsPerSubject != 2 || info.State.Msgs != 2 {
		t.Fatalf("after the start: bound %d, %d transcripts; want 2 and 2", info.Config.MaxMsgsPerSubject, info.State.Msgs)
	}
	if m, err := s.GetLastMsgForSubject(ctx, subject); err != nil || string(m.Data) != "4" {
		t.Fatalf("alice's last transcript: %v, %v; want her newest, 4", m, err)
	}
}
