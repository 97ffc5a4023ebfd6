package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// A thought the workers would refuse is refused at publish time.
func TestOversizeThoughtRefusedAtPublish(t *testing.T) {
	r := newRig(t, sim.Config{})
	runService(t, r.cfg)
	th := thought(1, strings.Repeat("x", 1<<19))
	data, _ := json.Marshal(th)
	_, err := r.js.Publish(context.Background(), consumers.ThoughtSubject(th.AgentID), data)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "maximum") {
		t.Fatalf("a %d-byte thought: %v; want a refusal at publish", len(data), err)
	}
	ok := thought(2, strings.Repeat("y", r.cfg.MaxThoughtBytes-512))
	data, _ = json.Marshal(ok)
	if _, err := r.js.Publish(context.Background(), consumers.ThoughtSubject(ok.AgentID), data); err != nil {
		t.Fatalf("a thought within the limit: %v", err)
	}
}

// A letter that would pass max_payload keeps the first bytes of the original,
// its size and its sha256; it is still listed, and replay refuses it.
func TestOversizeDeadLetterIsCut(t *testing.T) {
	r := newRig(t, sim.Config{})
	runService(t, r.cfg)
	big := bytes.Repeat([]byte("z"), 2<<20)
	l := consumers.Letter{Stage: pipeline.StageTribunal, Subject: "noesis.thoughts.a", Seq: 7, Attempts: 1, Reason: "too big", Data: big,
		Transcript: map[string]string{"thinking": strings.Repeat("t", 64<<10)}}
	if err := consumers.StoreLetter(context.Background(), r.js, l); err != nil {
		t.Fatal(err)
	}
	letters, err := consumers.ListLetters(context.Background(), r.js, pipeline.StageTribunal)
	if err != nil || len(letters) != 1 {
		t.Fatalf("%d letters, %v", len(letters), err)
	}
	got := letters[0]
	if got.Header.Get(consumers.HeaderDLQTruncated) != "true" || got.Header.Get(consumers.HeaderDLQSize) != "2097152" || len(got.Data) >= consumers.MaxLetterBytes || len(got.Data) < 1<<19 {
		t.Fatalf("letter: %d bytes, headers %v", len(got.Data), got.Header)
	}
	var tr map[string]any
	if err := json.Unmarshal([]byte(got.Header.Get(consumers.HeaderDLQTranscript)), &tr); err != nil || tr["truncated"] != true {
		t.Errorf("transcript header is not JSON marked truncated: %v", err)
	}
	if _, err := consumers.Replay(context.Background(), r.js, got); !errors.Is(err, consumers.ErrNotReplayable) {
		t.Errorf("replay of a cut letter: %v", err)
	}
}

// A deleted stream is set up again by the running service, /readyz says so
// meanwhile, and thoughts flow again afterwards, dead letters included.
func TestDeletedStreamsAreSetUpAgain(t *testing.T) {
	r := newRig(t, sim.Config{Shape: "tagged-lines"})
	r.cfg.MetricsAddr = "127.0.0.1:0"
	svc := runService(t, r.cfg)
	for _, name := range []string{consumers.StreamDLQ, consumers.StreamThoughts} {
		if err := r.js.DeleteStream(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	sawNotReady := false
	missing := func() []string { return consumers.ReadHealth(context.Background(), r.js).MissingStreams }
	eventually(t, 20*time.Second, func() bool {
		if resp, err := http.Get("http://" + svc.MetricsAddr() + "/readyz"); err == nil {
			sawNotReady = sawNotReady || resp.StatusCode == http.StatusServiceUnavailable
			resp.Body.Close()
		}
		return len(missing()) == 0
	}, func() string { return fmt.Sprintf("streams still missing: %v", missing()) })
	if !sawNotReady {
		t.Error("/readyz never said the streams were missing")
	}
	got := collect(t, r.nc)
	good := thought(1, "after the streams came back")
	good.Content.Depth = 1
	bad := pipeline.Thought{EventID: "bad-1", AgentID: "daimon-2", Content: pipeline.Content{UserInput: "x"}, Stages: []pipeline.Stage{"poetry"}}
	// The stream exists; its consumers follow within seconds.
	eventually(t, 20*time.Second, func() bool {
		_, err := r.js.Consumer(context.Background(), consumers.StreamThoughts, "tribunal")
		return err == nil
	}, func() string { return "the tribunal consumer was not set up again" })
	publishThought(t, r.js, good)
	data, _ := json.Marshal(bad)
	if _, err := r.js.Publish(context.Background(), consumers.ThoughtSubject(bad.AgentID), data, jetstream.WithMsgID(bad.EventID)); err != nil {
		t.Fatal(err)
	}
	got.waitFor(t, 30*time.Second, map[string]int{"narratives": 1, "verdicts": 1, "dlq.input": 1})
}
