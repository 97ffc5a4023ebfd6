// Package consumers runs noesis on NATS JetStream: it declares the streams and
// durable consumers, runs one worker pool per stage, maps each handler result
// to an ack, a nak or a dead letter, and publishes outputs with ids that make
// a redelivered thought's second output a no-op.
//
// Delivery semantics, in one place:
//   - output published and PubAck'd -> the input is acked (a lost ack is a
//     redelivery, whose output the outputs stream drops as a duplicate);
//   - the thought does not ask for this stage -> acked, nothing published;
//   - bad input (pipeline.ErrBadInput) or a permanent failure
//     (pipeline.ErrPermanent) -> dead letter, then Term; a thought no stage
//     can read has one letter for all of them (StageInput);
//   - the output refused for want of room (ErrStreamFull) -> the thought is
//     held, heartbeating, and its output published again until there is
//     room; no delivery is spent;
//   - any other failure -> NakWithDelay with exponential backoff, until
//     MaxDeliver; the last failed delivery -> dead letter, then Term;
//   - a model call still running -> InProgress every AckWait/3, so a slow call
//     is never handed to a second worker.
package consumers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/pipeline"
)

// Stream names.
const (
	StreamThoughts = "NOESIS_THOUGHTS"
	StreamOutputs  = "NOESIS_OUTPUTS"
	StreamDLQ      = "NOESIS_DLQ"
	// StreamReplays keeps the thoughts `noesis dlq replay` puts back;
	// NOESIS_THOUGHTS sources it (see StreamConfigs for why).
	StreamReplays = "NOESIS_REPLAYS"
	// StreamTranscripts keeps the tribunal's transcripts (how each verdict
	// was reached: the judges' calls and thinking), stored under
	// _noesis.store.transcripts.<agent> and republished on
	// noesis.transcripts.<agent>, with its own bounds
	// (StreamsConfig.TranscriptsMaxBytes).
	StreamTranscripts = "NOESIS_TRANSCRIPTS"
)

// Subject roots. Outputs and dead letters are stored under internal subjects
// (StorePrefix) and the streams republish each stored message once onto the
// public subjects (noesis.narratives.<agent>, noesis.dlq.<stage>, ...). A
// second publish of the same output is dropped by the stream's duplicate
// window before it is stored, so it never reaches a subscriber of the public
// subjects either. Workers publish to the internal subjects; people and
// agents subscribe to the public ones.
const (
	ThoughtsPrefix = "noesis.thoughts."
	DLQPrefix      = "noesis.dlq."
	StorePrefix    = "_noesis.store."
	// ReplayPrefix is where `noesis dlq replay` puts a thought back, for one
	// stage (header Noesis-Only-Stage). Only operators may publish there, so
	// the header is trusted there and nowhere else. NOESIS_REPLAYS stores
	// these subjects and NOESIS_THOUGHTS sources them, keeping the subject:
	// no agent's publish can reach NOESIS_THOUGHTS under it.
	ReplayPrefix = "_noesis.replay."
)

// ReplaySubject is where a replayed thought of an agent is published.
func ReplaySubject(agentID string) string { return ReplayPrefix + agentID }

// SubjectAgent returns the agent a thought subject names, and false for a
// subject that is not a thought's.
func SubjectAgent(subject string) (string, bool) {
	if a, ok := strings.CutPrefix(subject, ThoughtsPrefix); ok {
		return a, true
	}
	return strings.CutPrefix(subject, ReplayPrefix)
}

// TranscriptSubject is where the transcript of an agent's verdict is
// published: noesis.transcripts.<agent>.
func TranscriptSubject(agentID string) string { return "noesis.transcripts." + agentID }

// ThoughtSubject is where an agent publishes its thoughts.
func ThoughtSubject(agentID string) string { return ThoughtsPrefix + agentID }

// OutputSubject is where a stage's output for an agent is published:
// noesis.narratives.<agent>, noesis.verdicts.<agent>, noesis.analyses.<agent>.
func OutputSubject(s pipeline.Stage, agentID string) string {
	return outputRoot(s) + "." + agentID
}

func outputRoot(s pipeline.Stage) string {
	switch s {
	case pipeline.StageTribunal:
		return "noesis.verdicts"
	case pipeline.StageAnalysis:
		return "noesis.analyses"
	default:
		return "noesis.narratives"
	}
}

// StoreSubject is the internal subject under which a public subject's
// messages are stored; the stream republishes them onto the public subject.
func StoreSubject(public string) string { return StorePrefix + strings.TrimPrefix(public, "noesis.") }

// DLQSubject is where a stage's dead letters are seen.
func DLQSubject(s pipeline.Stage) string { return DLQPrefix + string(s) }

// ThoughtDigest identifies a stored thought by its subject and bytes: 16 hex
// digits of their sha256. A redelivery, a replay or a publisher's retry of the
// same thought has the same digest; a different thought has another, even
// with the same event_id.
func ThoughtDigest(subject string, data []byte) string {
	h := sha256.New()
	h.Write([]byte(subject))
	h.Write([]byte{0})
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// OutputMsgID is the Nats-Msg-Id of a stage's output for a thought, which
// makes the outputs stream drop a second publish of it.
func OutputMsgID(eventID string, s pipeline.Stage, digest string) string {
	return eventID + ":" + string(s) + ":" + digest
}

// StreamsConfig shapes the streams. Every stream is bounded in age and bytes;
// what each does when full is its discard policy (StreamConfigs, and
// docs/operations.md "When a stream is full").
type StreamsConfig struct {
	// Replicas per stream: 1 on one server, 3 on a three-node cluster.
	Replicas int
	// Storage is file (the default) or memory.
	Storage jetstream.StorageType
	// DuplicateWindow is how long the outputs and dead letters streams
	// remember a Nats-Msg-Id; it must be longer than the longest redelivery
	// span; default 15 min. The thoughts stream has none (StreamConfigs).
	DuplicateWindow time.Duration
	// MaxAge bounds how long thoughts and outputs are kept; default 24 h.
	MaxAge time.Duration
	// MaxThoughtBytes, when set, makes the thoughts stream refuse a thought
	// larger than that plus ThoughtHeaderAllowance of headers, at publish time.
	MaxThoughtBytes int
	// ThoughtsMaxBytes bounds NOESIS_THOUGHTS, which then refuses new
	// thoughts at publish (ErrStreamFull) until old ones age out; default
	// DefaultThoughtsMaxBytes.
	ThoughtsMaxBytes int64
	// OutputsMaxBytes bounds NOESIS_OUTPUTS, which then drops its oldest
	// outputs (each was republished to its agent when stored); default
	// DefaultOutputsMaxBytes.
	OutputsMaxBytes int64
	// DLQMaxBytes bounds NOESIS_DLQ, which then refuses new letters (the
	// thoughts wait, nak'd, for room), and NOESIS_REPLAYS; default
	// DefaultDLQMaxBytes.
	DLQMaxBytes int64
	// TranscriptsMaxBytes bounds NOESIS_TRANSCRIPTS (kept MaxAge, like the
	// outputs), which then drops its oldest transcripts; default
	// DefaultTranscriptsMaxBytes.
	TranscriptsMaxBytes int64
	// DLQMaxAge is how long dead letters are kept; default DefaultDLQMaxAge.
	DLQMaxAge time.Duration
	// MaxThoughtsPerAgent bounds the thoughts one agent holds in
	// NOESIS_THOUGHTS (its subject's messages; the Compactor removes the
	// acknowledged ones as it nears the bound, so it counts what waits);
	// past it the agent's publish is refused (a *FullError with Agent set)
	// and the others' go on. Default: as many of the largest thoughts
	// (MaxThoughtBytes) as fill an eighth of ThoughtsMaxBytes (1,820 with
	// the defaults), or DefaultMaxThoughtsPerAgent without MaxThoughtBytes.
	MaxThoughtsPerAgent int64
}

// The streams' bounds unless configured: together with NOESIS_REPLAYS (as
// large as the dead letters), NOESIS_TRANSCRIPTS (512 MiB) and NOESIS_ADVISORIES (64 MiB), 3.1 GiB, which
// JetStream reserves up front against the server's and the account's storage.
const (
	DefaultThoughtsMaxBytes int64 = 1 << 30
	DefaultOutputsMaxBytes  int64 = 1 << 30
	DefaultDLQMaxBytes      int64 = 256 << 20
	DefaultDLQMaxAge              = 7 * 24 * time.Hour
	// DefaultMaxThoughtsPerAgent is the bound per agent when the largest
	// thought is not known (StreamsConfig.MaxThoughtsPerAgent).
	DefaultMaxThoughtsPerAgent int64 = 10_000
	advisoriesMaxBytes         int64 = 64 << 20

	// DefaultTranscriptsMaxBytes holds ~50,000 transcripts of three judges
	// thinking the usual 700 tokens (~10 KiB each).
	DefaultTranscriptsMaxBytes int64 = 512 << 20
)

// ThoughtHeaderAllowance is the room for headers (a message id, a trace
// context) the thoughts stream allows beyond MaxThoughtBytes: JetStream counts
// headers in a stream's maximum message size.
const ThoughtHeaderAllowance = 8 << 10

func (c StreamsConfig) withDefaults() StreamsConfig {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 15 * time.Minute
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.ThoughtsMaxBytes <= 0 {
		c.ThoughtsMaxBytes = DefaultThoughtsMaxBytes
	}
	if c.OutputsMaxBytes <= 0 {
		c.OutputsMaxBytes = DefaultOutputsMaxBytes
	}
	if c.DLQMaxBytes <= 0 {
		c.DLQMaxBytes = DefaultDLQMaxBytes
	}
	if c.TranscriptsMaxBytes <= 0 {
		c.TranscriptsMaxBytes = DefaultTranscriptsMaxBytes
	}
	if c.DLQMaxAge <= 0 {
		c.DLQMaxAge = DefaultDLQMaxAge
	}
	if c.MaxThoughtsPerAgent <= 0 {
		c.MaxThoughtsPerAgent = DefaultMaxThoughtsPerAgent
		if c.MaxThoughtBytes > 0 {
			// An eighth of the stream, at the largest thoughts.
			c.MaxThoughtsPerAgent = max(c.ThoughtsMaxBytes/8/int64(c.MaxThoughtBytes+ThoughtHeaderAllowance), 1)
		}
	}
	return c
}

// StreamConfigs returns the configurations EnsureStreams applies, in the
// order it applies them.
//
// NOESIS_THOUGHTS deduplicates nothing. A Nats-Msg-Id is scoped to a whole
// stream, not to a subject or a publisher, so with any duplicate window one
// agent publishing first under another's message id makes the other's
// thought a "duplicate" that is never stored (with the least window
// JetStream allows, 100 ms, an agent repeating the id every 10 ms did it).
// JetStream gives a stream no window only when it sources another: without
// sources a window of 0 becomes the 2-minute default, and a window of 0
// disables deduplication (nats-server's checkStreamCfg and storeMsgIdLocked).
// So the replayed thoughts go into a stream of their own, NOESIS_REPLAYS,
// which NOESIS_THOUGHTS sources: its window stays 0. The sourced copy keeps
// its subject (_noesis.replay.<agent>), which no agent can publish to
// NOESIS_THOUGHTS under: the stream takes only noesis.thoughts.> directly.
// Outputs are deduplicated by event, stage and the thought's digest instead
// (OutputMsgID): a publisher's retry is stored again and processed again
// (from the cache), and its outputs are dropped as duplicates.
//
// When full, NOESIS_THOUGHTS and NOESIS_REPLAYS refuse new messages (discard
// new): nothing they accepted is dropped before its age. NOESIS_OUTPUTS drops
// its oldest outputs (discard old): each was republished to its agent the
// moment it was stored, and a worker never has to hold a thought for want of
// room. NOESIS_DLQ refuses new letters (discard new): the letters an
// operator has not seen yet are kept, and the thoughts whose letters are
// refused wait for room, nak'd, in NOESIS_THOUGHTS and NOESIS_ADVISORIES.
func StreamConfigs(cfg StreamsConfig) []jetstream.StreamConfig {
	cfg = cfg.withDefaults()
	base := func(name, desc string, subjects []string, maxAge time.Duration, maxBytes int64, discard jetstream.DiscardPolicy) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name: name, Description: desc, Subjects: subjects, Storage: cfg.Storage, Replicas: cfg.Replicas,
			Retention: jetstream.LimitsPolicy, MaxAge: maxAge, MaxBytes: maxBytes, Duplicates: cfg.DuplicateWindow, Discard: discard,
		}
	}
	var stored []string
	for _, s := range pipeline.Stages {
		stored = append(stored, StoreSubject(outputRoot(s))+".>")
	}
	thoughts := base(StreamThoughts, "noesis: agents' thoughts", []string{ThoughtsPrefix + ">"}, cfg.MaxAge, cfg.ThoughtsMaxBytes, jetstream.DiscardNew)
	thoughts.Duplicates = 0
	// One subject per agent: a publish past its quota is refused, the
	// others' are not (discard new per subject).
	thoughts.MaxMsgsPerSubject, thoughts.DiscardNewPerSubject = cfg.MaxThoughtsPerAgent, true
	thoughts.Sources = []*jetstream.StreamSource{{Name: StreamReplays}}
	if cfg.MaxThoughtBytes > 0 {
		thoughts.MaxMsgSize = int32(cfg.MaxThoughtBytes + ThoughtHeaderAllowance)
	}
	replays := base(StreamReplays, "noesis: thoughts put back by noesis dlq replay, sourced by "+StreamThoughts,
		[]string{ReplayPrefix + ">"}, cfg.MaxAge, cfg.DLQMaxBytes, jetstream.DiscardNew)
	outputs := base(StreamOutputs, "noesis: narratives, verdicts and analyses", stored, cfg.MaxAge, cfg.OutputsMaxBytes, jetstream.DiscardOld)
	outputs.RePublish = &jetstream.RePublish{Source: StorePrefix + ">", Destination: "noesis.>"}
	dlq := base(StreamDLQ, "noesis: dead letters", []string{StoreSubject(DLQPrefix) + ">"}, cfg.DLQMaxAge, cfg.DLQMaxBytes, jetstream.DiscardNew)
	// A letter is stored under _noesis.store.dlq.<stage>.<thought> and seen
	// on noesis.dlq.<stage>.
	dlq.RePublish = &jetstream.RePublish{Source: StoreSubject(DLQPrefix) + "*.*", Destination: DLQPrefix + "{{wildcard(1)}}"}
	// Transcripts drop their oldest when full, as outputs do: each was
	// republished when stored, and a worker never waits for room for one.
	transcripts := base(StreamTranscripts, "noesis: how each verdict was reached (the judges' calls and thinking)",
		[]string{StoreSubject(TranscriptSubject(">"))}, cfg.MaxAge, cfg.TranscriptsMaxBytes, jetstream.DiscardOld)
	transcripts.RePublish = &jetstream.RePublish{Source: StoreSubject(TranscriptSubject(">")), Destination: TranscriptSubject(">")}
	// NOESIS_THOUGHTS first: an older deployment's took the replay subjects
	// itself, and NOESIS_REPLAYS can take them only once it has given them up.
	return []jetstream.StreamConfig{thoughts, replays, outputs, dlq, transcripts}
}

// EnsureStreams creates or updates the streams (StreamConfigs). It is
// idempotent, and processes that start together do not fight: a create that
// loses the race becomes an update. A deployment's older streams are updated
// in place: NOESIS_THOUGHTS gives up the replay subjects and its duplicate
// window and sources NOESIS_REPLAYS, and the bounds are added (a stream that
// discards new messages when full loses none of those it holds).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) error {
	for _, sc := range StreamConfigs(cfg) {
		if err := ensureStream(ctx, js, sc); err != nil {
			return err
		}
	}
	return nil
}

// ensureStream creates sc's stream, or updates it when its configuration
// differs. It asks for a create first: JetStream answers a create whose
// configuration matches the stream's with the stream and changes nothing, so
// a worker starting against streams already set up (every start but the
// first) updates none, where an update always rewrites the stream's
// configuration and announces it.
func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	return retryUnavailable(ctx, "stream "+sc.Name, func(ctx context.Context) error {
		_, err := js.CreateStream(ctx, sc)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			_, err = js.UpdateStream(ctx, sc)
		}
		return err
	})
}

// ensureBucket creates a key-value bucket, or updates it when its
// configuration differs, asking for a create first as ensureStream does.
func ensureBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.UpdateKeyValue(ctx, cfg)
	}
	return kv, err
}

// retryUnavailable runs op until it succeeds, fails for good, or ctx ends.
// It tries again while JetStream is not there yet (a cluster electing its
// leaders, a server starting) and when another process won a create race.
func retryUnavailable(ctx context.Context, what string, op func(context.Context) error) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := op(octx)
		if err != nil && !unavailable(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 50 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: time.Second}),
		backoff.WithMaxElapsedTime(0))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func unavailable(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code >= 500 || apiErr.ErrorCode == jetstream.JSErrCodeStreamNameInUse ||
			strings.Contains(apiErr.Description, "already in use") || strings.Contains(apiErr.Description, "insufficient resources") ||
			strings.Contains(apiErr.Description, "no suitable peers") || strings.Contains(apiErr.Description, "not available")
	}
	return false
}

// ConsumerConfig returns the durable pull consumer of a stage.
func ConsumerConfig(cfg PoolConfig) jetstream.ConsumerConfig {
	cfg = cfg.withDefaults()
	return jetstream.ConsumerConfig{
		Durable:        string(cfg.Stage),
		Description:    fmt.Sprintf("noesis %s stage (%s tier)", cfg.Stage, cfg.Stage.Tier()),
		FilterSubjects: []string{ThoughtsPrefix + ">", ReplayPrefix + ">"},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     cfg.MaxDeliver,
		MaxAckPending:  cfg.MaxAckPending,
	}
}
