package consumers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
)

// Headers noesis sets on outputs and dead letters.
const (
	HeaderEventID       = "Noesis-Event-Id"
	HeaderStage         = "Noesis-Stage"
	HeaderOnlyStage     = "Noesis-Only-Stage" // set by replay: other stages skip the thought
	HeaderDLQReason     = "Noesis-Dlq-Reason"
	HeaderDLQAttempts   = "Noesis-Dlq-Attempts"
	HeaderDLQStreamSeq  = "Noesis-Dlq-Stream-Seq"
	HeaderDLQSubject    = "Noesis-Dlq-Subject"
	HeaderDLQTime       = "Noesis-Dlq-Time"
	HeaderDLQTranscript = "Noesis-Dlq-Transcript"
	// A letter whose original could not be kept whole carries the original's
	// size and sha256 and the first bytes of it (see MaxLetterBytes).
	HeaderDLQTruncated  = "Noesis-Dlq-Truncated"
	HeaderDLQSize       = "Noesis-Dlq-Size"
	HeaderDLQDigest     = "Noesis-Dlq-Sha256"
	maxReasonHeaderSize = 2048
	maxTranscriptSize   = 16 << 10
	maxHeaderValue      = 4 << 10 // any other header copied from the thought
)

// MaxLetterBytes bounds a dead letter, body and headers: under the NATS
// default max_payload of 1 MiB, with room for the protocol. A letter that
// would be larger keeps the first bytes of the original with its size and
// sha256; the original stays in NOESIS_THOUGHTS under its sequence.
const MaxLetterBytes = 1<<20 - 16<<10

// Letter is one dead letter: the original message and why it could not be processed.
type Letter struct {
	Stage      pipeline.Stage
	Subject    string // where the thought was published
	Seq        uint64 // its sequence in NOESIS_THOUGHTS
	Attempts   uint64
	Reason     string
	Data       []byte
	Header     nats.Header
	Transcript any // what the judges said before the failure, if any

	DLQSeq uint64    // the letter's own sequence in NOESIS_DLQ (when read back)
	Time   time.Time // when it was stored (when read back)
}

// StageInput is the stage a dead letter names when its thought could not be
// read at all (invalid JSON, a missing or mistyped field, an unknown stage,
// an oversize payload, an agent_id that differs from its subject): no stage
// ran it, so its one letter stands for every stage, whichever stage's worker
// wrote it. Replaying it runs every stage the thought asks for. Its letters
// are seen on noesis.dlq.input.
const StageInput pipeline.Stage = "input"

// letterStage reports whether s is a stage a letter may name.
func letterStage(s pipeline.Stage) bool { return s.Valid() || s == StageInput }

// letterKey names the thought a letter is for: its sequence in
// NOESIS_THOUGHTS, or (unknown only when its metadata could not be read) the
// digest of its subject and bytes.
func letterKey(l Letter) string {
	if l.Seq > 0 {
		return strconv.FormatUint(l.Seq, 10)
	}
	return "d" + ThoughtDigest(l.Subject, l.Data)
}

// maxCopiedHeaders bounds the bytes of a thought's own headers (a trace
// context, an agent's) a letter keeps: an agent padding its thoughts' headers
// does not fill the dead letters eight times faster.
const maxCopiedHeaders = 1 << 10

// StoreLetter publishes a dead letter and waits for the DLQ stream to store
// it. A stage's letter for a thought is stored once, whoever writes it (the
// stage's worker, another worker after a redelivery, the reaper) and however
// long after: each is stored under a subject of its own,
// _noesis.store.dlq.<stage>.<thought>, which must be empty for the letter to be
// stored (a second letter finds it taken and counts as stored). So a
// thought that cannot be read gets one StageInput letter, not one per stage.
// A DLQ that is full refuses the letter: the error wraps ErrStreamFull.
func StoreLetter(ctx context.Context, js jetstream.JetStream, l Letter) error {
	if !letterStage(l.Stage) {
		return fmt.Errorf("store dead letter: unknown stage %q", l.Stage)
	}
	reason := strings.NewReplacer("\r", " ", "\n", " ").Replace(l.Reason)
	reason = clipBytes(reason, maxReasonHeaderSize)
	key := letterKey(l)
	m := nats.NewMsg(StoreSubject(DLQSubject(l.Stage)) + "." + key)
	m.Data = l.Data
	copied := 0 // the thought's own headers: at most maxCopiedHeaders bytes of them
	for k, vs := range l.Header {
		if k == nats.MsgIdHdr || strings.HasPrefix(k, "Nats-") || strings.HasPrefix(k, "Noesis-Dlq-") {
			continue
		}
		for _, v := range vs {
			v = clipBytes(v, maxHeaderValue)
			if copied += len(k) + len(v); copied > maxCopiedHeaders {
				break
			}
			m.Header.Add(k, v)
		}
	}
	m.Header.Set(HeaderStage, string(l.Stage))
	m.Header.Set(HeaderDLQReason, reason)
	m.Header.Set(HeaderDLQAttempts, strconv.FormatUint(l.Attempts, 10))
	m.Header.Set(HeaderDLQStreamSeq, strconv.FormatUint(l.Seq, 10))
	m.Header.Set(HeaderDLQSubject, l.Subject)
	m.Header.Set(HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	if l.Transcript != nil {
		if b, err := json.Marshal(l.Transcript); err == nil {
			if len(b) > maxTranscriptSize {
				// Still JSON: the transcript's first bytes as a string, marked cut.
				b, _ = json.Marshal(map[string]any{"truncated": true, "bytes": len(b), "head": clipBytes(string(b), maxTranscriptSize-256)})
			}
			m.Header.Set(HeaderDLQTranscript, string(b))
		}
	}
	if size := headerSize(m.Header) + len(m.Data); size > MaxLetterBytes {
		sum := sha256.Sum256(l.Data)
		m.Header.Set(HeaderDLQTruncated, "true")
		m.Header.Set(HeaderDLQSize, strconv.Itoa(len(l.Data)))
		m.Header.Set(HeaderDLQDigest, hex.EncodeToString(sum[:]))
		m.Data = l.Data[:max(0, min(len(l.Data), MaxLetterBytes-headerSize(m.Header)))]
	}
	_, err := publishRetrying(ctx, js, m, string(l.Stage)+":"+key, StreamDLQ, jetstream.WithExpectLastSequencePerSubject(0))
	if err != nil && !errors.Is(err, errSubjectTaken) {
		return fmt.Errorf("store dead letter: %w", err)
	}
	return nil
}

// headerSize is about what h takes on the wire.
func headerSize(h nats.Header) int {
	n := 16
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// clipBytes cuts s to at most n bytes, on a rune boundary.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ListLetters reads the dead letters, oldest first, optionally of one stage
// (StageInput included).
func ListLetters(ctx context.Context, js jetstream.JetStream, stage pipeline.Stage) ([]Letter, error) {
	filters := []string{StoreSubject(DLQPrefix) + ">"}
	if stage != "" {
		// A letter's own subject, and the stage's one subject of earlier releases.
		filters = []string{StoreSubject(DLQSubject(stage)) + ".*", StoreSubject(DLQSubject(stage))}
	}
	var out []Letter
	err := readStream(ctx, js, StreamDLQ, filters, 0, func(m jetstream.Msg) { out = append(out, letterFrom(m)) })
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	return out, nil
}

// ReadStream calls fn with every message of a stream (matching filter, if
// any) stored when it starts, oldest first, through an ephemeral consumer
// that acknowledges nothing. Unlike an ordered consumer it gives up with an
// error when ctx ends, even while the stream's cluster is changing leaders.
func ReadStream(ctx context.Context, js jetstream.JetStream, stream, filter string, fn func(jetstream.Msg)) error {
	return ReadStreamFrom(ctx, js, stream, filter, 0, fn)
}

// ReadStreamFrom is ReadStream starting at stream sequence from (0: the first).
func ReadStreamFrom(ctx context.Context, js jetstream.JetStream, stream, filter string, from uint64, fn func(jetstream.Msg)) error {
	var filters []string
	if filter != "" {
		filters = []string{filter}
	}
	return readStream(ctx, js, stream, filters, from, fn)
}

// readStream is ReadStreamFrom with any number of filters (none: every message).
func readStream(ctx context.Context, js jetstream.JetStream, stream string, filters []string, from uint64, fn func(jetstream.Msg)) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	if from > last {
		return nil
	}
	cc := jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: 30 * time.Second, MemoryStorage: true}
	if from > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	switch len(filters) {
	case 0:
	case 1:
		cc.FilterSubject = filters[0]
	default:
		cc.FilterSubjects = filters
	}
	c, err := s.CreateConsumer(ctx, cc)
	if err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = s.DeleteConsumer(dctx, c.CachedInfo().Name)
	}()
	for ctx.Err() == nil {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			return err
		}
		n, done := 0, false
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err == nil && md.Sequence.Stream > last {
				done = true // stored after we started
				continue
			}
			fn(m)
			if err == nil && (md.Sequence.Stream >= last || md.NumPending == 0) {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if done || n == 0 {
			return nil
		}
	}
	return ctx.Err()
}

func letterFrom(m jetstream.Msg) Letter {
	h := m.Headers()
	l := Letter{Stage: pipeline.Stage(h.Get(HeaderStage)), Subject: h.Get(HeaderDLQSubject), Reason: h.Get(HeaderDLQReason), Data: m.Data(), Header: h}
	l.Attempts, _ = strconv.ParseUint(h.Get(HeaderDLQAttempts), 10, 64)
	l.Seq, _ = strconv.ParseUint(h.Get(HeaderDLQStreamSeq), 10, 64)
	if t := h.Get(HeaderDLQTranscript); t != "" {
		l.Transcript = json.RawMessage(t)
	}
	if md, err := m.Metadata(); err == nil {
		l.DLQSeq, l.Time = md.Sequence.Stream, md.Timestamp
	}
	return l
}

// ErrNotReplayable is returned for a letter that has no thought subject to go back to.
var ErrNotReplayable = errors.New("dead letter cannot be replayed")

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
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
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
	for {
		last, err := s.GetLastMsgForSubject(ctx, subject)
		switch {
		case err == nil && last.Header.Get(nats.MsgIdHdr) == id:
			return last.Sequence, nil
		case err == nil && sourcedSeq(last.Header) >= seq && time.Since(scanned) > 500*time.Millisecond:
			scanned = time.Now()
			var found uint64
			_ = ReadStream(ctx, js, StreamThoughts, subject, func(m jetstream.Msg) {
				if m.Headers().Get(nats.MsgIdHdr) == id {
					if md, err := m.Metadata(); err == nil {
						found = md.Sequence.Stream
					}
				}
			})
			if found > 0 {
				return found, nil
			}
		case err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) && ctx.Err() == nil:
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("it was not in %s after %s (full? it may still come: replay the letter again only if it does not): %w", StreamThoughts, replayWait, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
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

// Reaper turns JetStream's max-deliveries advisories into dead letters: a
// thought whose last delivery ended without an ack (the worker was killed,
// hung, or lost its connection) is not redelivered by the server, and would
// otherwise vanish. The advisories are captured by a stream, so none is lost
// while no noesis process runs; any number of processes may run a Reaper.
type Reaper struct {
	js  jetstream.JetStream
	log zerolog.Logger
}

// Advisory stream and its durable consumer.
const (
	StreamAdvisories = "NOESIS_ADVISORIES"
	reaperDurable    = "dead-letters"
	advisorySubject  = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + StreamThoughts + ".*"
)

// NewReaper returns a reaper.
func NewReaper(js jetstream.JetStream, log zerolog.Logger) *Reaper {
	return &Reaper{js: js, log: log.With().Str("component", "reaper").Logger()}
}

// EnsureAdvisoryStream creates the stream that keeps the advisories, 7 days
// and at most 64 MiB; when full it drops the oldest (handled long since).
func EnsureAdvisoryStream(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) error {
	cfg = cfg.withDefaults()
	return ensureStream(ctx, js, jetstream.StreamConfig{
		Name: StreamAdvisories, Description: "noesis: thoughts that ran out of deliveries", Subjects: []string{advisorySubject},
		Storage: cfg.Storage, Replicas: cfg.Replicas, MaxAge: 7 * 24 * time.Hour, MaxBytes: advisoriesMaxBytes, Discard: jetstream.DiscardOld,
	})
}

// reaperTries is how often the reaper tries to store a whole letter for an
// advisory before it stores one that refers to the thought by its sequence.
const reaperTries = 5

// reaperFullWait is how long an advisory whose letter the full DLQ refused
// waits before the reaper tries again.
const reaperFullWait = 30 * time.Second

// Run consumes advisories until ctx ends, up to 16 at once, so one advisory
// that cannot be handled never holds the others back. If its consumer or
// stream disappears, it sets them up again.
func (r *Reaper) Run(ctx context.Context) error {
	sem := make(chan struct{}, 16)
	for ctx.Err() == nil {
		c, err := r.js.CreateOrUpdateConsumer(ctx, StreamAdvisories, jetstream.ConsumerConfig{
			Durable: reaperDurable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: -1, MaxAckPending: 256,
		})
		if err == nil {
			var cc jetstream.ConsumeContext
			cc, err = c.Consume(func(m jetstream.Msg) {
				sem <- struct{}{}
				go func() {
					defer func() { <-sem }()
					hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					defer cancel()
					r.handle(hctx, m)
				}()
			})
			if err == nil {
				select {
				case <-ctx.Done():
					cc.Drain()
					<-cc.Closed()
					return nil
				case <-cc.Closed():
					err = errors.New("consumer closed")
				}
			}
		}
		r.log.Error().Err(err).Msg("reaper: advisories consumer lost; setting it up again")
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

func (r *Reaper) handle(ctx context.Context, m jetstream.Msg) {
	var adv struct {
		Stream     string `json:"stream"`
		Consumer   string `json:"consumer"`
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	if err := json.Unmarshal(m.Data(), &adv); err != nil || !pipeline.Stage(adv.Consumer).Valid() {
		_ = m.Term() // not ours, or not readable: nothing to dead-letter
		return
	}
	tries := uint64(1)
	if md, err := m.Metadata(); err == nil {
		tries = md.NumDelivered
	}
	l := Letter{Stage: pipeline.Stage(adv.Consumer), Seq: adv.StreamSeq, Attempts: adv.Deliveries,
		Reason: fmt.Sprintf("no answer after %d deliveries: the worker holding it stopped, hung or lost its connection", adv.Deliveries)}
	s, err := r.js.Stream(ctx, adv.Stream)
	if err == nil {
		var raw *jetstream.RawStreamMsg
		raw, err = s.GetMsg(ctx, adv.StreamSeq)
		if err == nil {
			l.Subject, l.Data, l.Header = raw.Subject, raw.Data, raw.Header
		}
	}
	if err != nil {
		if !errors.Is(err, jetstream.ErrMsgNotFound) && tries < reaperTries {
			_ = m.NakWithDelay(time.Duration(tries) * time.Second)
			return
		}
		l.Reason += "; the thought could not be read back: " + err.Error()
	}
	err = StoreLetter(ctx, r.js, l)
	if errors.Is(err, ErrStreamFull) {
		// Not the letter's fault: it waits for room, however long, and the
		// backlog shows in the reaper's health meanwhile.
		r.log.Warn().Err(err).Uint64("seq", l.Seq).Msg("dead letters full; the letter waits for room")
		_ = m.NakWithDelay(reaperFullWait)
		return
	}
	if err != nil && tries >= reaperTries {
		// A letter that refers to the thought by its sequence, without its body or headers.
		l.Reason += fmt.Sprintf("; its whole letter could not be stored (%v): the thought is sequence %d in %s", err, l.Seq, adv.Stream)
		l.Data, l.Header = nil, nil
		err = StoreLetter(ctx, r.js, l)
	}
	if err != nil {
		if tries >= 2*reaperTries {
			r.log.Error().Err(err).Uint64("seq", l.Seq).Msg("reaper: no dead letter could be stored; advisory dropped (it stays in " + StreamAdvisories + ")")
			_ = m.Term()
			return
		}
		r.log.Error().Err(err).Uint64("seq", l.Seq).Uint64("try", tries).Msg("dead letter not stored; will retry")
		_ = m.NakWithDelay(time.Duration(tries) * time.Second)
		return
	}
	r.log.Warn().Str("stage", string(l.Stage)).Uint64("seq", l.Seq).Msg("thought ran out of deliveries; dead-lettered")
	_ = m.Ack()
}
