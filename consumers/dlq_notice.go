package consumers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamNotices keeps the notices that tell an agent one of its thoughts
// was dead-lettered, stored under _noesis.store.deadletters.<agent> and
// republished on noesis.deadletters.<agent> (NoticeSubject): an agent cannot
// read NOESIS_DLQ, which holds every agent's letters. Bounded by age (as the
// outputs), by noticesMaxBytes and by maxNoticesPerAgent per agent, dropping
// the oldest: each was republished when stored.
const StreamNotices = "NOESIS_DLQ_NOTICES"

// The notices' bounds: a notice is at most ~3 KiB (a reason of at most
// 2 KiB), so an agent's 1,024 fill at most 3 MiB of the stream's 64 MiB.
const (
	noticesMaxBytes    int64 = 64 << 20
	maxNoticesPerAgent int64 = 1024
	maxNoticeEventID         = 256
)

// NoticeSubject is where an agent hears that one of its thoughts was
// dead-lettered: noesis.deadletters.<agent>.
func NoticeSubject(agentID string) string { return "noesis.deadletters." + agentID }

// Notice tells an agent that one of its thoughts was dead-lettered, and why:
// what its letter says of it, without the thought's bytes, headers or
// transcript. Its reason is the letter's (scrubbed of credentials where the
// error was made, one line, at most 2 KiB).
type Notice struct {
	// EventID is the thought's event_id; empty when the thought could not
	// be read as JSON (the letter's bytes say more, to an operator).
	EventID string `json:"event_id"`
	// AgentID is the agent whose subject the thought was published on.
	AgentID string `json:"agent_id"`
	// Stage is the stage that gave the thought up, or "input" (StageInput).
	Stage string `json:"stage"`
	// Reason is why, as the dead letter says.
	Reason string `json:"reason"`
	// Attempts is how many deliveries the stage made.
	Attempts uint64 `json:"attempts"`
	// ThoughtDigest is ThoughtDigest of the thought's subject and bytes, as
	// in its outputs' Nats-Msg-Id: another thought under the same event_id
	// has another.
	ThoughtDigest string `json:"thought_digest"`
	// DeadLetteredAt is when the notice was written.
	DeadLetteredAt time.Time `json:"dead_lettered_at"`
}

// noticesConfig is NOESIS_DLQ_NOTICES: one subject per agent.
func noticesConfig(cfg StreamsConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: StreamNotices, Description: "noesis: notices to agents of their dead-lettered thoughts",
		Subjects: []string{StoreSubject(NoticeSubject(">"))}, Storage: cfg.Storage, Replicas: cfg.Replicas,
		Retention: jetstream.LimitsPolicy, MaxAge: cfg.MaxAge, MaxBytes: noticesMaxBytes, MaxMsgsPerSubject: maxNoticesPerAgent,
		Duplicates: cfg.DuplicateWindow, Discard: jetstream.DiscardOld,
		RePublish: &jetstream.RePublish{Source: StoreSubject(NoticeSubject(">")), Destination: NoticeSubject(">")},
	}
}

// publishNotice stores the notice of l, whose reason as stored is reason,
// for the agent whose subject l's thought came on. A letter whose thought
// came on no agent's subject (its thought could not be read back) has no
// notice. It has the letter's message id, so the notice of a letter written
// again (another worker, the reaper) is dropped as a duplicate.
func publishNotice(ctx context.Context, js jetstream.JetStream, l Letter, reason, id string) error {
	agent, ok := SubjectAgent(l.Subject)
	if !ok || agent == "" {
		return nil
	}
	var head struct {
		EventID string `json:"event_id"`
	}
	_ = json.Unmarshal(l.Data, &head) // an unreadable thought's notice has no event_id
	data, err := json.Marshal(Notice{EventID: clipBytes(head.EventID, maxNoticeEventID), AgentID: agent, Stage: string(l.Stage),
		Reason: reason, Attempts: l.Attempts, ThoughtDigest: ThoughtDigest(l.Subject, l.Data), DeadLetteredAt: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("notice: %w", err)
	}
	m := nats.NewMsg(StoreSubject(NoticeSubject(agent)))
	m.Data = data
	if _, err := publishRetrying(ctx, js, m, id, StreamNotices); err != nil {
		return fmt.Errorf("notice to agent %s: %w", agent, err)
	}
	return nil
}
