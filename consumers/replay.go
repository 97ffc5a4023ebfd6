package consumers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/pipeline/retry"
)

// Replay publishes a dead letter's original thought again and deletes the
// letter once the thought is back in NOESIS_THOUGHTS. The thought is
// published on the replay subject (ReplaySubject, which only operators may
// publish on) into NOESIS_REPLAYS, which NOESIS_THOUGHTS sources; a stage's
// letter is replayed for that stage only (header Noesis-Only-Stage), a
// StageInput letter for every stage the thought asks for. The returned
// PubAck names the thought's new sequence in NOESIS_THOUGHTS.
//
// The thought's Nats-Msg-Id is "<event or seq>:replay:<letter seq>", which
// NOESIS_REPLAYS remembers for the duplicate window: a second replay of the
// same letter meanwhile is refused and the letter kept. The letter is kept
// too when NOESIS_THOUGHTS is full (the error wraps ErrStreamFull) or the
// thought is not seen there within replayWait (it may still arrive). The
// outputs stream drops a second output of a stage that had already
// published one.
func Replay(ctx context.Context, js jetstream.JetStream, l Letter) (*jetstream.PubAck, error) {
	agent, ok := SubjectAgent(l.Subject)
	if !ok || !letterStage(l.Stage) {
		return nil, fmt.Errorf("%w: letter %d has subject %q and stage %q", ErrNotReplayable, l.DLQSeq, l.Subject, l.Stage)
	}
	if l.Header.Get(HeaderDLQTruncated) != "" {
		return nil, fmt.Errorf("%w: letter %d keeps only the first bytes of a %s-byte thought (sequence %d in %s)",
			ErrNotReplayable, l.DLQSeq, l.Header.Get(HeaderDLQSize), l.Seq, StreamThoughts)
	}
	if err := roomFor(ctx, js, StreamThoughts, len(l.Data)); err != nil {
		return nil, fmt.Errorf("replay letter %d: %w; the letter is kept", l.DLQSeq, err)
	}
	m := nats.NewMsg(ReplaySubject(agent))
	m.Data = l.Data
	for k, vs := range l.Header {
		if strings.HasPrefix(k, "Noesis-") || strings.HasPrefix(k, "Nats-") {
			continue
		}
		for _, v := range vs {
			m.Header.Add(k, v)
		}
	}
	if l.Stage != StageInput {
		m.Header.Set(HeaderOnlyStage, string(l.Stage))
	}
	id := strconv.FormatUint(l.Seq, 10)
	var th struct {
		EventID string `json:"event_id"`
	}
	if json.Unmarshal(l.Data, &th) == nil && th.EventID != "" {
		id = th.EventID
	}
	id = fmt.Sprintf("%s:replay:%d", id, l.DLQSeq)
	ack, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(id), jetstream.WithExpectStream(StreamReplays))
	if err != nil {
		return nil, fmt.Errorf("replay letter %d: %w", l.DLQSeq, PublishError(StreamReplays, err))
	}
	if ack.Duplicate {
		return ack, fmt.Errorf("replay letter %d: %s took it for a replay already in flight; the letter is kept", l.DLQSeq, StreamReplays)
	}
	seq, err := awaitSourced(ctx, js, agent, id, ack.Sequence)
	if err != nil {
		return nil, fmt.Errorf("replay letter %d: stored as %d in %s, but %w; the letter is kept", l.DLQSeq, ack.Sequence, StreamReplays, err)
	}
	back := &jetstream.PubAck{Stream: StreamThoughts, Sequence: seq}
	if l.DLQSeq > 0 {
		s, err := js.Stream(ctx, StreamDLQ)
		if err != nil {
			return back, err
		}
		if err := s.DeleteMsg(ctx, l.DLQSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return back, fmt.Errorf("replayed, but letter %d not removed: %w", l.DLQSeq, err)
		}
	}
	return back, nil
}

// replayWait is how long Replay waits to see a replayed thought in
// NOESIS_THOUGHTS. Sourcing takes milliseconds; after NOESIS_REPLAYS was
// deleted and set up again, NOESIS_THOUGHTS takes some seconds to notice
// (it then sources the new stream from its start).
const replayWait = 30 * time.Second

// roomFor reports, wrapping ErrStreamFull, a stream with no room left for n
// more bytes (and their headers). It is a courtesy, not a guarantee: the
// stream is the judge when the message arrives.
func roomFor(ctx context.Context, js jetstream.JetStream, stream string, n int) error {
	_, info, err := streamInfo(ctx, js, stream)
	if err != nil {
		return err
	}
	if lim := info.Config.MaxBytes; lim > 0 && info.State.Bytes+uint64(n)+uint64(ThoughtHeaderAllowance) > uint64(lim) {
		return &FullError{Stream: stream, Err: fmt.Errorf("%d of %d bytes used", info.State.Bytes, lim)}
	}
	return nil
}

// awaitSourced waits until the replayed thought with message id id, stored
// as sequence seq of NOESIS_REPLAYS, is in NOESIS_THOUGHTS, and returns its
// sequence there. It looks at the last replay of the agent there, and, when
// that one came from a later replay (another operator's, at once), among
// the agent's replays.
func awaitSourced(ctx context.Context, js jetstream.JetStream, agent, id string, seq uint64) (uint64, error) {
	s, err := js.Stream(ctx, StreamThoughts)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, replayWait)
	defer cancel()
	subject := ReplaySubject(agent)
	var scanned time.Time
	found, err := retry.Do(ctx, sourcedPolicy, func() (uint64, error) {
		last, err := s.GetLastMsgForSubject(ctx, subject)
		switch {
		case err == nil && last.Header.Get(nats.MsgIdHdr) == id:
			return last.Sequence, nil
		case err == nil && sourcedSeq(last.Header) >= seq && time.Since(scanned) > 500*time.Millisecond:
			scanned = time.Now()
			if found := findByMsgID(ctx, js, subject, id); found > 0 {
				return found, nil
			}
		case err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) && ctx.Err() == nil:
			return 0, retry.Permanent(err)
		}
		return 0, errNotSourcedYet
	})
	if err != nil && ctx.Err() != nil {
		return 0, fmt.Errorf("it was not in %s after %s (full? it may still come: replay the letter again only if it does not): %w", StreamThoughts, replayWait, ctx.Err())
	}
	return found, err
}

// sourcedPolicy is how often awaitSourced looks: every 20 ms.
var sourcedPolicy = retry.Policy{Initial: 20 * time.Millisecond, Multiplier: 1}

// findByMsgID is the sequence of the message with id among the thoughts of
// subject, 0 when there is none.
func findByMsgID(ctx context.Context, js jetstream.JetStream, subject, id string) uint64 {
	var found uint64
	_ = ReadStream(ctx, js, StreamThoughts, subject, func(m jetstream.Msg) {
		if m.Headers().Get(nats.MsgIdHdr) == id {
			if md, err := m.Metadata(); err == nil {
				found = md.Sequence.Stream
			}
		}
	})
	return found
}

// sourcedSeq is the sequence in its origin stream of a sourced message, from
// its Nats-Stream-Source header ("<stream> <seq> ..."); 0 if it has none.
func sourcedSeq(h nats.Header) uint64 {
	f := strings.Fields(h.Get("Nats-Stream-Source"))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseUint(f[1], 10, 64)
	return n
}
