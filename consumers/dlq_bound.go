package consumers

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/pipeline"
)

// StreamLetterKeys remembers which thoughts have a dead letter, one empty
// message per letter under _noesis.store.dlqkeys.<stage>.<thought>
// (letterKeySubject), so that a stage's letter for a thought is stored
// once however long apart its writers come (another stage's worker, the
// reaper), though NOESIS_DLQ keeps an agent's letters of a stage on one
// subject. It drops its oldest keys when full: a key lost lets a writer
// that comes after the duplicate window store a second letter, never loses
// one.
const StreamLetterKeys = "NOESIS_DLQ_KEYS"

// letterKeysMaxBytes bounds NOESIS_DLQ_KEYS: some 200,000 keys.
const letterKeysMaxBytes int64 = 16 << 20

// LetterHeaderAllowance is what a dead letter may add to its thought's
// bytes: the judges' transcript (16 KiB), the reason (2 KiB), the thought's
// own headers (1 KiB) and noesis's (StoreLetter).
const LetterHeaderAllowance = 20 << 10

// unknownAgent is the agent token of a letter whose thought names none (it
// could not be read back from NOESIS_THOUGHTS): no agent id has a "~".
const unknownAgent = "~unknown"

// letterAgent is the agent a letter's thought came from, as its subject
// names it, or unknownAgent.
func letterAgent(l Letter) string {
	if a, ok := SubjectAgent(l.Subject); ok && pipeline.ValidToken(a) {
		return a
	}
	return unknownAgent
}

// LetterSubject is where a stage's dead letters of an agent are stored:
// _noesis.store.dlq.<stage>.<agent>, which NOESIS_DLQ bounds to
// StreamsConfig.MaxDeadLettersPerAgent letters, dropping the oldest, and
// republishes on noesis.dlq.<stage>.
func LetterSubject(stage pipeline.Stage, agentID string) string {
	return StoreSubject(DLQSubject(stage)) + "." + agentID
}

// letterKeySubject is where NOESIS_DLQ_KEYS remembers that a stage's letter
// for the thought key is stored.
func letterKeySubject(stage pipeline.Stage, key string) string {
	return StorePrefix + "dlqkeys." + string(stage) + "." + key
}

// letterStored reports whether a stage's letter for the thought key was
// stored before, as NOESIS_DLQ_KEYS remembers. Without that stream (set up
// at the next start) it reports false: the duplicate window still holds.
func letterStored(ctx context.Context, js jetstream.JetStream, stage pipeline.Stage, key string) (bool, error) {
	s, err := js.Stream(ctx, StreamLetterKeys)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, nil
	}
	if err == nil {
		_, err = s.GetLastMsgForSubject(ctx, letterKeySubject(stage, key))
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return false, nil
	}
	return false, fmt.Errorf("dead letter keys: %w", err)
}

// rememberLetter stores the key of a letter just stored. A key not stored
// is no loss: a writer within the duplicate window finds the letter by its
// message id, and a later one stores a second letter.
func rememberLetter(ctx context.Context, js jetstream.JetStream, stage pipeline.Stage, key string) {
	m := nats.NewMsg(letterKeySubject(stage, key))
	_, _ = publishRetrying(ctx, js, m, string(stage)+":"+key, StreamLetterKeys)
}

// defaultDeadLettersPerAgent is MaxDeadLettersPerAgent's default: one agent's
// letters of the four kinds (input and each stage) together fill at most an
// eighth of NOESIS_DLQ at the largest letters (97 of each with the
// defaults: 256 MiB, thoughts of at most 64 KiB).
func (c StreamsConfig) defaultDeadLettersPerAgent() int64 {
	largest := int64(MaxLetterBytes)
	if c.MaxThoughtBytes > 0 {
		largest = min(largest, int64(c.MaxThoughtBytes+LetterHeaderAllowance))
	}
	kinds := int64(len(pipeline.Stages) + 1)
	return max(c.DLQMaxBytes/8/kinds/largest, 1)
}

// letterKeysConfig is NOESIS_DLQ_KEYS: kept as long as the letters, one
// key per subject, the oldest dropped when full.
func letterKeysConfig(cfg StreamsConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: StreamLetterKeys, Description: "noesis: which thoughts have a dead letter, so that each is stored once",
		Subjects: []string{StorePrefix + "dlqkeys.>"}, Storage: cfg.Storage, Replicas: cfg.Replicas,
		Retention: jetstream.LimitsPolicy, MaxAge: cfg.DLQMaxAge, MaxBytes: letterKeysMaxBytes, MaxMsgsPerSubject: 1,
		Duplicates: cfg.DuplicateWindow, Discard: jetstream.DiscardOld,
	}
}

// keepOlderLetters raises sc's bound per subject, NOESIS_DLQ's, to the
// letters the most crowded subject of the stream already set up holds
// under a stage's one subject of earlier releases
// (_noesis.store.dlq.<stage>), so that the bound's update drops none of
// them; once they are replayed or aged out, the next start applies the
// bound itself. Without the stream it changes nothing.
func keepOlderLetters(ctx context.Context, js jetstream.JetStream, sc *jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, StreamDLQ)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	var info *jetstream.StreamInfo
	if err == nil {
		info, err = s.Info(ctx, jetstream.WithSubjectFilter(StoreSubject(DLQPrefix)+"*"))
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", StreamDLQ, err)
	}
	for _, n := range info.State.Subjects {
		if int64(n) > sc.MaxMsgsPerSubject {
			sc.MaxMsgsPerSubject = int64(n)
		}
	}
	return nil
}
