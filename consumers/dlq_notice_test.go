package consumers_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/docs/contract"
	"github.com/noesis-dev/noesis/pipeline"
)

// A dead letter tells its thought's agent, and only that agent, on
// noesis.deadletters.<agent>: the event, the stage, the reason and the
// thought's digest, never the thought's bytes or headers. A letter written
// again (another worker, the reaper) is told once.
func TestStoreLetterNotifiesTheAgent(t *testing.T) {
	ctx, js := withStreams(t)
	sub := func(subject string) *nats.Subscription {
		t.Helper()
		jsnc := js.Conn()
		s, err := jsnc.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		if err := jsnc.Flush(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	alice, bob := sub(consumers.NoticeSubject("alice")), sub(consumers.NoticeSubject("bob"))
	const secret = "sk-live-SECRET-in-the-thought"
	data := []byte(`{"event_id":"ev-1","agent_id":"alice","content":{"user_input":"` + secret + `"}}`)
	l := consumers.Letter{Stage: pipeline.StageTribunal, Subject: consumers.ThoughtSubject("alice"), Seq: 7, Attempts: 3,
		Reason: "gave up after 3 deliveries:\nHTTP 503", Data: data, Header: nats.Header{"Authorization": {"Bearer " + secret}}}
	for range 2 { // the worker's letter, then the reaper's
		if err := consumers.StoreLetter(ctx, js, l); err != nil {
			t.Fatal(err)
		}
	}
	m, err := alice.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("alice heard no notice: %v", err)
	}
	if strings.Contains(string(m.Data)+strings.Join(slices.Collect(keysAndValues(m.Header)), " "), secret) {
		t.Fatalf("the notice carries the thought: %s %v", m.Data, m.Header)
	}
	var n consumers.Notice
	if err := json.Unmarshal(m.Data, &n); err != nil {
		t.Fatal(err)
	}
	want := consumers.Notice{EventID: "ev-1", AgentID: "alice", Stage: "tribunal", Reason: "gave up after 3 deliveries: HTTP 503", Attempts: 3,
		ThoughtDigest: consumers.ThoughtDigest(consumers.ThoughtSubject("alice"), data), DeadLetteredAt: n.DeadLetteredAt}
	if n != want || time.Since(n.DeadLetteredAt) > time.Minute {
		t.Errorf("notice %+v, want %+v", n, want)
	}
	schemas, err := contract.Schemas()
	if err != nil {
		t.Fatal(err)
	}
	if err := contract.Validate(schemas, contract.DeadLetterNotice, m.Data); err != nil {
		t.Error(err)
	}
	// Told once: the second letter found its subject taken, and its notice
	// was dropped as a duplicate.
	if info := streamInfo(t, js, consumers.StreamNotices); info.State.Msgs != 1 {
		t.Errorf("%s holds %d notices, want 1", consumers.StreamNotices, info.State.Msgs)
	}
	// A thought that is not JSON at all, on bob's subject: bob is told, without an event.
	bad := consumers.Letter{Stage: consumers.StageInput, Subject: consumers.ThoughtSubject("bob"), Seq: 8, Attempts: 1, Reason: "bad input: invalid JSON", Data: []byte("{nope")}
	if err := consumers.StoreLetter(ctx, js, bad); err != nil {
		t.Fatal(err)
	}
	if m, err = bob.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("bob heard no notice: %v", err)
	}
	if err := json.Unmarshal(m.Data, &n); err != nil || n.EventID != "" || n.Stage != "input" || n.AgentID != "bob" {
		t.Errorf("bob's notice %s (%v)", m.Data, err)
	}
	if err := contract.Validate(schemas, contract.DeadLetterNotice, m.Data); err != nil {
		t.Error(err)
	}
	if m, err := alice.NextMsg(200 * time.Millisecond); err == nil {
		t.Errorf("alice heard another notice: %s", m.Data)
	}
}

func keysAndValues(h nats.Header) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k, vs := range h {
			for _, v := range vs {
				if !yield(k + ": " + v) {
					return
				}
			}
		}
	}
}

// The notice is described by its schema, field for field: every field a
// property and required (none is omitted), every property a field.
func TestNoticeSchemaMatchesStruct(t *testing.T) {
	diffs, err := contract.Mismatches(contract.DeadLetterNotice, reflect.TypeFor[consumers.Notice]())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Error(d)
	}
}
