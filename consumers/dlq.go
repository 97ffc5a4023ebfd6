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

// StoreLetter publishes a dead letter and waits for the DLQ stream to store
// it. A letter for the same stage and thought sequence is stored once.
func StoreLetter(ctx context.Context, js jetstream.JetStream, l Letter) error {
	reason := strings.NewReplacer("\r", " ", "\n", " ").Replace(l.Reason)
	reason = clipBytes(reason, maxReasonHeaderSize)
	m := nats.NewMsg(StoreSubject(DLQSubject(l.Stage)))
	m.Data = l.Data
	for k, vs := range l.Header {
		if k == nats.MsgIdHdr || strings.HasPrefix(k, "Nats-") || strings.HasPrefix(k, "Noesis-Dlq-") {
			continue
		}
		for _, v := range vs {
			m.Header.Add(k, clipBytes(v, maxHeaderValue))
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
	if _, err := publishRetrying(ctx, js, m, fmt.Sprintf("%s:%d", l.Stage, l.Seq), StreamDLQ); err != nil {
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

// ListLetters reads the dead letters, oldest first, optionally of one stage.
func ListLetters(ctx context.Context, js jetstream.JetStream, stage pipeline.Stage) ([]Letter, error) {
	filter := StoreSubject(DLQPrefix) + ">"
	if stage != "" {
		filter = StoreSubject(DLQSubject(stage))
	}
	var out []Letter
	err := ReadStream(ctx, js, StreamDLQ, filter, func(m jetstream.Msg) { out = append(out, letterFrom(m)) })
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
	cc := jetstream.ConsumerConfig{FilterSubject: filter, AckPolicy: jetstream.AckNonePolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: 30 * time.Second, MemoryStorage: true}
	if from > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
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

// Replay publishes a dead letter's original thought again, on the replay
// subject (ReplaySubject, which only operators may publish on) for its stage
// only (header Noesis-Only-Stage), then deletes the letter; a duplicate
// acknowledgement keeps the letter. The thought gets a new
// Nats-Msg-Id, "<event or seq>:replay:<letter seq>", so the thoughts stream
// does not drop it as a duplicate of the first publish; the outputs stream
// still drops a second output of a stage that had already published one.
func Replay(ctx context.Context, js jetstream.JetStream, l Letter) (*jetstream.PubAck, error) {
	agent, ok := SubjectAgent(l.Subject)
	if !ok || !l.Stage.Valid() {
		return nil, fmt.Errorf("%w: letter %d has subject %q and stage %q", ErrNotReplayable, l.DLQSeq, l.Subject, l.Stage)
	}
	if l.Header.Get(HeaderDLQTruncated) != "" {
		return nil, fmt.Errorf("%w: letter %d keeps only the first bytes of a %s-byte thought (sequence %d in %s)",
			ErrNotReplayable, l.DLQSeq, l.Header.Get(HeaderDLQSize), l.Seq, StreamThoughts)
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
	m.Header.Set(HeaderOnlyStage, string(l.Stage))
	id := strconv.FormatUint(l.Seq, 10)
	var th struct {
		EventID string `json:"event_id"`
	}
	if json.Unmarshal(l.Data, &th) == nil && th.EventID != "" {
		id = th.EventID
	}
	ack, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(fmt.Sprintf("%s:replay:%d", id, l.DLQSeq)), jetstream.WithExpectStream(StreamThoughts))
	if err != nil {
		return nil, fmt.Errorf("replay letter %d: %w", l.DLQSeq, err)
	}
	if ack.Duplicate {
		return ack, fmt.Errorf("replay letter %d: the thoughts stream took it for a replay already in flight; the letter is kept", l.DLQSeq)
	}
	if l.DLQSeq > 0 {
		s, err := js.Stream(ctx, StreamDLQ)
		if err != nil {
			return ack, err
		}
		if err := s.DeleteMsg(ctx, l.DLQSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return ack, fmt.Errorf("replayed, but letter %d not removed: %w", l.DLQSeq, err)
		}
	}
	return ack, nil
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

// EnsureAdvisoryStream creates the stream that keeps the advisories.
func EnsureAdvisoryStream(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) error {
	cfg = cfg.withDefaults()
	return ensureStream(ctx, js, jetstream.StreamConfig{
		Name: StreamAdvisories, Description: "noesis: thoughts that ran out of deliveries", Subjects: []string{advisorySubject},
		Storage: cfg.Storage, Replicas: cfg.Replicas, MaxAge: 7 * 24 * time.Hour,
	})
}

// reaperTries is how often the reaper tries to store a whole letter for an
// advisory before it stores one that refers to the thought by its sequence.
const reaperTries = 5

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
