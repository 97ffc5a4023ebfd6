package consumers

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/noesis-dev/noesis/pipeline"
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
