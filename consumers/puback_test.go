package consumers

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers/natstest"
)

// jetStreamReads is how jetstream v1.55.0 reads a publish's answer
// (jetStream.publishMsg), written out from its source so that readPubAck is
// checked against it and not against itself.
func jetStreamReads(data []byte) (*jetstream.PubAck, error) {
	var resp struct {
		apiResponse
		*jetstream.PubAck
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, jetstream.ErrInvalidJSAck
	}
	if resp.Error != nil {
		return nil, errors.New("nats: " + resp.Error.Error())
	}
	if resp.PubAck == nil || resp.PubAck.Stream == "" {
		return nil, jetstream.ErrInvalidJSAck
	}
	return resp.PubAck, nil
}

type apiResponse struct {
	Type  string              `json:"type"`
	Error *jetstream.APIError `json:"error,omitempty"`
}

// pubAckSeeds are answers nats-server writes (stream.go's pubAck template
// and its duplicate and error forms) and ones it does not.
var pubAckSeeds = []string{
	`{"stream":"NOESIS_OUTPUTS","seq":1}`,
	`{"stream":"NOESIS_OUTPUTS","seq":18446744073709551615}`,
	`{"stream":"NOESIS_OUTPUTS","seq":18446744073709551616}`,
	`{"stream":"NOESIS_OUTPUTS","seq":42,"duplicate": true}`,
	`{"stream":"NOESIS_OUTPUTS","domain":"hub","seq":42}`,
	`{"stream":"S","seq":7,"batch":"b1","count":2}`,
	`{"stream":"S","seq":7,"val":"12"}`,
	`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"S","seq":0}`,
	`{"type":"io.nats.jetstream.api.v1.pub_ack_response","error":{"code":400,"err_code":10060,"description":"expected stream does not match"}}`,
	`{"type":3,"stream":"S","seq":1}`,
	`{"stream":"","seq":1}`,
	`{"seq":1}`,
	`{}`,
	`null`,
	``,
	` { "stream" : "S" , "seq" : 1 } `,
	`{"stream":"S","seq":01}`,
	`{"stream":"S","seq":1.0}`,
	`{"stream":"S","seq":1e2}`,
	`{"stream":"S","seq":-1}`,
	`{"stream":"S","seq":1,"seq":2}`,
	`{"stream":"A","stream":"B","seq":1}`,
	`{"Stream":"S","SEQ":1}`,
	`{"stream":"S\u00e9","seq":1}`,
	`{"stream":"S\"","seq":1}`,
	"{\"stream\":\"S\xff\",\"seq\":1}",
	`{"stream":"S","seq":1,"duplicate":false}`,
	`{"stream":"S","seq":1,"duplicate":truex}`,
	`{"stream":"S","seq":1,}`,
	`{"stream":"S","seq":1}}`,
	`{"stream":"S","seq":1} x`,
	`{"stream":"S","seq":1,"duplicate":null}`,
	`{"stream":null,"seq":1}`,
}

// sameAnswer fails t unless readPubAck reads data as jetstream does.
func sameAnswer(t *testing.T, data []byte) {
	t.Helper()
	got, gotErr := readPubAck(data)
	want, wantErr := jetStreamReads(data)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("%q: error %v, jetstream's %v", data, gotErr, wantErr)
	}
	if errors.Is(wantErr, jetstream.ErrInvalidJSAck) != errors.Is(gotErr, jetstream.ErrInvalidJSAck) {
		t.Fatalf("%q: error %v is not jetstream's %v", data, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: ack %+v, jetstream's %+v", data, got, want)
	}
}

func TestReadPubAckAsJetStream(t *testing.T) {
	for _, s := range pubAckSeeds {
		sameAnswer(t, []byte(s))
	}
	// The server's own answers take the fast path.
	for _, s := range pubAckSeeds[:5] {
		if _, ok := fastPubAck([]byte(s)); !ok && s != `{"stream":"NOESIS_OUTPUTS","seq":18446744073709551616}` {
			t.Errorf("%s: not read by the fast path", s)
		}
	}
}

func TestReadPubAckKeepsTheStreamsError(t *testing.T) {
	_, err := readPubAck([]byte(`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}`))
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jsErrStoreFailed {
		t.Fatalf("error %v: want the stream's APIError, code %d", err, jsErrStoreFailed)
	}
	if !errors.Is(PublishError("S", err), ErrStreamFull) {
		t.Fatalf("%v does not read as a full stream", err)
	}
}

func FuzzReadPubAckAsJetStream(f *testing.F) {
	for _, s := range pubAckSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { sameAnswer(t, data) })
}

// TestPublishMsgAnswersAsJetStream publishes through publishMsg and
// jetstream's PublishMsg, to a real server, in each case a publish meets:
// stored, a duplicate, a stream that is not the one expected, a full
// stream, and no stream at all.
func TestPublishMsgAnswersAsJetStream(t *testing.T) {
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, sc := range []jetstream.StreamConfig{
		{Name: "OURS", Subjects: []string{"ours.>"}, Storage: jetstream.MemoryStorage},
		{Name: "FULL", Subjects: []string{"full.>"}, Storage: jetstream.MemoryStorage, MaxMsgs: 1, Discard: jetstream.DiscardNew},
	} {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	both := func(subject, id, stream string) (ours, theirs *jetstream.PubAck, oursErr, theirsErr error) {
		ours, oursErr = publishMsg(ctx, nc, nats.NewMsg(subject), "a"+id, stream)
		theirs, theirsErr = js.PublishMsg(ctx, nats.NewMsg(subject), jetstream.WithMsgID("b"+id), jetstream.WithExpectStream(stream))
		return
	}
	same := func(name string, ours, theirs *jetstream.PubAck, oursErr, theirsErr error) {
		t.Helper()
		if (oursErr == nil) != (theirsErr == nil) || oursErr != nil && oursErr.Error() != theirsErr.Error() {
			t.Fatalf("%s: error %v, jetstream's %v", name, oursErr, theirsErr)
		}
		if (ours == nil) != (theirs == nil) || ours != nil && (ours.Stream != theirs.Stream || ours.Duplicate != theirs.Duplicate) {
			t.Fatalf("%s: ack %+v, jetstream's %+v", name, ours, theirs)
		}
	}
	ours, theirs, oe, te := both("ours.x", "1", "OURS")
	same("stored", ours, theirs, oe, te)
	if oe != nil || ours.Sequence != 1 || theirs.Sequence != 2 {
		t.Fatalf("stored: sequences %d and %d, want 1 and 2", ours.Sequence, theirs.Sequence)
	}
	ours, theirs, oe, te = both("ours.x", "1", "OURS")
	same("duplicate", ours, theirs, oe, te)
	if !ours.Duplicate {
		t.Fatal("a second publish of the same id is not a duplicate")
	}
	ours, theirs, oe, te = both("ours.x", "2", "OTHER")
	same("another stream expected", ours, theirs, oe, te)
	if oe == nil {
		t.Fatal("a publish expecting another stream was stored")
	}
	if _, err := publishMsg(ctx, nc, nats.NewMsg("full.x"), "f1", "FULL"); err != nil {
		t.Fatal(err)
	}
	ours, theirs, oe, te = both("full.x", "3", "FULL")
	same("full", ours, theirs, oe, te)
	if !errors.Is(PublishError("FULL", oe), ErrStreamFull) {
		t.Fatalf("full: %v does not read as a full stream", oe)
	}
	ours, theirs, oe, te = both("nowhere.x", "4", "NONE")
	same("no stream", ours, theirs, oe, te)
	if !errors.Is(oe, jetstream.ErrNoStreamResponse) {
		t.Fatalf("no stream: %v, want ErrNoStreamResponse", oe)
	}
}

// A pool's publishes share one deadline a second, 5-6 s away; a context
// with a cancellation of its own, or no pool, gets a timeout of its own;
// every wait ends with the pool's work.
func TestAckDeadlinesAreSharedWithinTheirSecond(t *testing.T) {
	work, stop := context.WithCancel(context.Background())
	defer stop()
	acks := newAckDeadlines(work.Done())
	type key struct{}
	delivery := context.WithValue(work, key{}, "a delivery's values")
	before := time.Now()
	a, doneA := acks.within(delivery)
	defer doneA()
	b, doneB := acks.within(work)
	defer doneB()
	if a != b {
		t.Error("two publishes of the same second got two contexts")
	}
	if dl, ok := a.Deadline(); !ok || dl.Before(before.Add(ackTimeout)) || dl.After(time.Now().Add(ackTimeout+time.Second)) {
		t.Errorf("deadline %v from %v, want within %v-%v of it", dl, before, ackTimeout, ackTimeout+time.Second)
	}
	own, cancelOwn := context.WithCancel(work)
	defer cancelOwn()
	for what, acks := range map[string]*ackDeadlines{"a context of its own": acks, "no pool": nil} {
		c, done := acks.within(own)
		if c == a {
			t.Errorf("%s: the pool's shared context", what)
		}
		if dl, ok := c.Deadline(); !ok || dl.After(time.Now().Add(ackTimeout)) {
			t.Errorf("%s: deadline %v, want %v from now", what, dl, ackTimeout)
		}
		done()
		if c.Err() == nil {
			t.Errorf("%s: its timeout is not released when done", what)
		}
	}
	stop()
	select { // the work's end reaches the shared context through context.AfterFunc's goroutine
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Error("the shared wait outlives the pool's work")
	}
}
