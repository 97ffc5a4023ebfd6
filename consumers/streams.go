package consumers

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers/setup"
	"github.com/noesis-dev/noesis/consumers/shared"
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
	// MaxOutputsPerAgent bounds the outputs of each stage one agent holds
	// in NOESIS_OUTPUTS (its subject's messages, one subject per stage and
	// agent): past it the agent's own oldest of that stage goes, not
	// another agent's, so one agent's flood cannot push the others' outputs
	// out before they are read. Default DefaultMaxOutputsPerAgent.
	MaxOutputsPerAgent int64
	// DLQMaxBytes bounds NOESIS_DLQ, which then refuses new letters (the
	// thoughts wait, nak'd, for room), and NOESIS_REPLAYS; default
	// DefaultDLQMaxBytes.
	DLQMaxBytes int64
	// MaxDeadLettersPerAgent bounds the letters one agent holds in
	// NOESIS_DLQ of each kind (input, and each stage): past it the agent's
	// own oldest letter of that kind goes, not another agent's, so a flood
	// of bad input cannot fill the stream every agent's letters need.
	// Default: one agent's letters of the four kinds together fill at most
	// an eighth of DLQMaxBytes at the largest letters (97 of each with the
	// defaults; LetterHeaderAllowance).
	MaxDeadLettersPerAgent int64
	// TranscriptsMaxBytes bounds NOESIS_TRANSCRIPTS (kept MaxAge, like the
	// outputs), which then drops its oldest transcripts; default
	// DefaultTranscriptsMaxBytes.
	TranscriptsMaxBytes int64
	// MaxTranscriptsPerAgent bounds the transcripts one agent holds in
	// NOESIS_TRANSCRIPTS (its subject's messages): past it the agent's
	// oldest transcript goes, not another agent's, so a flooding agent
	// replaces only its own. Default DefaultMaxTranscriptsPerAgent.
	MaxTranscriptsPerAgent int64
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
// large as the dead letters), NOESIS_TRANSCRIPTS (512 MiB), NOESIS_ADVISORIES
// and NOESIS_DLQ_NOTICES (64 MiB each) and NOESIS_DLQ_KEYS (16 MiB), 3.1 GiB, which
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
	// DefaultMaxTranscriptsPerAgent keeps an agent's last 4,096 transcripts:
	// about 48 MiB at ~12 KB each (three judges thinking a little more than
	// usual), under a tenth of DefaultTranscriptsMaxBytes, so ten agents at
	// their bounds still fit, and one verdict every 21 s for the whole
	// 24 h MaxAge.
	DefaultMaxTranscriptsPerAgent int64 = 4096
	// DefaultMaxOutputsPerAgent keeps an agent's last 4,096 outputs of each
	// stage: ~30 MiB for its narratives, verdicts and analyses at the usual
	// 1-4 KB, and even at 32 KB an output (an analysis at its 8,192-token
	// maximum) 384 MiB, so one agent alone cannot fill DefaultOutputsMaxBytes
	// (three at that size can); one of each every 21 s for the whole 24 h
	// MaxAge.
	DefaultMaxOutputsPerAgent int64 = 4096
)

// ThoughtHeaderAllowance is the room for headers (a message id, a trace
// context) the thoughts stream allows beyond MaxThoughtBytes: JetStream counts
// headers in a stream's maximum message size.
const ThoughtHeaderAllowance = 8 << 10

// Buckets places the shared state's key-value buckets as the streams are
// placed: the same replicas and storage.
func (c StreamsConfig) Buckets() shared.BucketConfig {
	c = c.withDefaults()
	return shared.BucketConfig{Replicas: c.Replicas, Storage: c.Storage}
}

// ThoughtsPerAgent is the most thoughts one agent may hold in
// NOESIS_THOUGHTS: MaxThoughtsPerAgent, or its default.
func (c StreamsConfig) ThoughtsPerAgent() int64 { return c.withDefaults().MaxThoughtsPerAgent }

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
	if c.MaxDeadLettersPerAgent <= 0 {
		c.MaxDeadLettersPerAgent = c.defaultDeadLettersPerAgent()
	}
	if c.MaxTranscriptsPerAgent <= 0 {
		c.MaxTranscriptsPerAgent = DefaultMaxTranscriptsPerAgent
	}
	if c.MaxOutputsPerAgent <= 0 {
		c.MaxOutputsPerAgent = DefaultMaxOutputsPerAgent
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
// refused wait for room, nak'd, in NOESIS_THOUGHTS and NOESIS_ADVISORIES;
// but an agent past its own bound (MaxDeadLettersPerAgent) loses its own
// oldest letter of the kind, so its flood drops only its own letters and
// never fills the stream. NOESIS_DLQ_KEYS remembers which letters are
// stored (StreamLetterKeys).
// NOESIS_DLQ_NOTICES tells each agent of its own dead letters
// (StreamNotices), dropping its oldest when full.
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
	// One subject per stage and agent, bounded as the transcripts are: past
	// it an agent's own oldest output of the stage goes.
	outputs.MaxMsgsPerSubject = cfg.MaxOutputsPerAgent
	dlq := base(StreamDLQ, "noesis: dead letters", []string{StoreSubject(DLQPrefix) + ">"}, cfg.DLQMaxAge, cfg.DLQMaxBytes, jetstream.DiscardNew)
	// A letter is stored under _noesis.store.dlq.<stage>.<agent> and seen on
	// noesis.dlq.<stage>; one subject per agent and kind, bounded: past it
	// the agent's own oldest letter of the kind goes (per subject, the
	// oldest; the stream's bytes still refuse new letters when full).
	dlq.RePublish = &jetstream.RePublish{Source: StoreSubject(DLQPrefix) + "*.*", Destination: DLQPrefix + "{{wildcard(1)}}"}
	dlq.MaxMsgsPerSubject = cfg.MaxDeadLettersPerAgent
	// Transcripts drop their oldest when full, as outputs do: each was
	// republished when stored, and a worker never waits for room for one.
	transcripts := base(StreamTranscripts, "noesis: how each verdict was reached (the judges' calls and thinking)",
		[]string{StoreSubject(TranscriptSubject(">"))}, cfg.MaxAge, cfg.TranscriptsMaxBytes, jetstream.DiscardOld)
	transcripts.RePublish = &jetstream.RePublish{Source: StoreSubject(TranscriptSubject(">")), Destination: TranscriptSubject(">")}
	// One subject per agent, bounded: past it an agent's own oldest
	// transcript goes (discard old per subject), and the byte bound is
	// reached only when many agents are near theirs.
	transcripts.MaxMsgsPerSubject = cfg.MaxTranscriptsPerAgent
	// NOESIS_THOUGHTS first: an older deployment's took the replay subjects
	// itself, and NOESIS_REPLAYS can take them only once it has given them up.
	return []jetstream.StreamConfig{thoughts, replays, outputs, dlq, letterKeysConfig(cfg), transcripts, noticesConfig(cfg)}
}

// EnsureStreams creates or updates the streams (StreamConfigs). It is
// idempotent, and processes that start together do not fight: a create that
// loses the race becomes an update. A deployment's older streams are updated
// in place: NOESIS_THOUGHTS gives up the replay subjects and its duplicate
// window and sources NOESIS_REPLAYS, and the bounds are added (a stream that
// discards new messages when full loses none of those it holds;
// NOESIS_TRANSCRIPTS and NOESIS_OUTPUTS, given their bounds per agent, keep
// each agent's newest MaxTranscriptsPerAgent and MaxOutputsPerAgent (of
// each stage); NOESIS_DLQ, given its bound per agent, drops
// none of the letters it holds: each earlier one is alone on its subject,
// and the letters of releases that kept a stage's letters on one subject
// are kept, the bound raised for them, until they are gone: keepOlderLetters).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) error {
	for _, sc := range StreamConfigs(cfg) {
		if sc.Name == StreamDLQ {
			if err := keepOlderLetters(ctx, js, &sc); err != nil {
				return err
			}
		}
		if err := setup.Stream(ctx, js, sc); err != nil {
			return err
		}
	}
	return nil
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
