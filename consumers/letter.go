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
// NOESIS_THOUGHTS and when that stream was made, or (unknown only when its
// metadata could not be read) the digest of its subject and bytes. The
// sequence alone is not enough: a NOESIS_THOUGHTS deleted and made again
// (the guard does) numbers its thoughts from 1 again, and a new thought that
// could not be read took an older thought's key and message id, so its
// letter was taken as stored already and the thought was lost.
func letterKey(ctx context.Context, js jetstream.JetStream, l Letter) (string, error) {
	if l.Seq == 0 {
		return "d" + ThoughtDigest(l.Subject, l.Data), nil
	}
	era := "gone" // the stream is gone: a key no stream made again can give
	s, err := js.Stream(ctx, StreamThoughts)
	switch {
	case err == nil:
		era = strconv.FormatInt(s.CachedInfo().Created.UnixNano(), 36)
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return "", fmt.Errorf("read %s: %w", StreamThoughts, err)
	}
	return strconv.FormatUint(l.Seq, 10) + "-" + era, nil
}

// maxCopiedHeaders bounds the bytes of a thought's own headers (a trace
// context, an agent's) a letter keeps: an agent padding its thoughts' headers
// does not fill the dead letters eight times faster.
const maxCopiedHeaders = 1 << 10

// StoreLetter publishes a dead letter and waits for the DLQ stream to store
// it. A stage's letter for a thought is stored once, whoever writes it (the
// stage's worker, another worker after a redelivery, the reaper) and however
// long after: within the duplicate window the stream drops a second by its
// message id, and after it NOESIS_DLQ_KEYS says it is stored
// (letterStored), so a second letter counts as stored. So a thought that
// cannot be read gets one StageInput letter, not one per stage. A letter is
// stored under LetterSubject, one subject per agent and stage, where the
// agent's oldest letter goes once it holds its bound. A DLQ that is full
// refuses the letter: the error wraps ErrStreamFull.
//
// Once the letter is stored (or found stored), the thought's agent is told,
// on NOESIS_DLQ_NOTICES (publishNotice): an error then says the letter is
// stored and the notice is not, and a second StoreLetter sends the notice
// (the letter found stored), once.
func StoreLetter(ctx context.Context, js jetstream.JetStream, l Letter) error {
	if !letterStage(l.Stage) {
		return fmt.Errorf("store dead letter: unknown stage %q", l.Stage)
	}
	reason := strings.NewReplacer("\r", " ", "\n", " ").Replace(l.Reason)
	reason = clipBytes(reason, maxReasonHeaderSize)
	key, err := letterKey(ctx, js, l)
	if err != nil {
		return fmt.Errorf("store dead letter: %w", err)
	}
	id := string(l.Stage) + ":" + key
	stored, err := letterStored(ctx, js, l.Stage, key)
	if err != nil {
		return fmt.Errorf("store dead letter: %w", err)
	}
	if !stored {
		if _, err := publishRetrying(ctx, js, letterMsg(l, reason), id, StreamDLQ); err != nil {
			return fmt.Errorf("store dead letter: %w", err)
		}
		rememberLetter(ctx, js, l.Stage, key)
	}
	if err := publishNotice(ctx, js, l, reason, id); err != nil {
		return fmt.Errorf("dead letter stored; %w", err)
	}
	return nil
}

// letterMsg is the message of letter l, whose reason as stored is reason,
// on its LetterSubject.
func letterMsg(l Letter, reason string) *nats.Msg {
	m := nats.NewMsg(LetterSubject(l.Stage, letterAgent(l)))
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
	return m
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

// letterFrom reads a letter back from its message in NOESIS_DLQ.
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
