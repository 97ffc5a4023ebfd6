package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
)

// FeederConsumer is the durable consumer on NOESIS_OUTPUTS's verdicts that
// the review feeder of earlier versions read every verdict through. Nothing
// reads it now; DropFeeder deletes it.
const FeederConsumer = "reviews"

var _ consumers.ReviewQueue = (*Clerk)(nil)

// Clerk queues the review of each verdict that requires human review. A
// tribunal pool given it (consumers.WithReviews) calls Queue with such a
// verdict before it publishes it, so the review is stored first; a thought
// redelivered after a crash is queued again, and the stream keeps the
// first review and refuses the second. Queue then answers with the verdict
// the first review holds, which the pool publishes in place of the one it
// judged again. It is safe for concurrent use.
type Clerk struct {
	js         jetstream.JetStream
	cfg        Config
	log        zerolog.Logger
	unreadable atomic.Uint64
	bounded    atomic.Uint64
}

// NewClerk returns a clerk that stores reviews into NOESIS_REVIEWS, which
// it sets up again with cfg when it finds it deleted. Ensure it first.
func NewClerk(js jetstream.JetStream, cfg Config, log zerolog.Logger) *Clerk {
	return &Clerk{js: js, cfg: cfg, log: log.With().Str("component", "reviews").Logger()}
}

// Queue stores the review of verdict (the bytes the pool publishes) of the
// thought in msg, once: its id is the thought's digest. It returns the
// verdict the stored review holds: verdict itself when this call stored
// it; when a review was stored before (the stream refuses the second, or
// drops it as a duplicate, or a redelivered thought finds it), the verdict
// that one holds, read back, or verdict again when that review does not
// decode (logged at error and counted: Unreadable).
//
// A review is queued only while its agent has fewer than MaxPerAgent
// reviews waiting; past it Queue returns an error that wraps ErrAgentBound
// and pipeline.ErrPermanent (queueBounded): the verdict is not published,
// the thought is dead-lettered with the reason. It returns an error
// that wraps both ErrFull and consumers.ErrStreamFull when NOESIS_REVIEWS
// has no room; else the decoding's, the count's, the publish's (the stream
// set up again first when it was deleted) or the read-back's error.
func (c *Clerk) Queue(ctx context.Context, msg jetstream.Msg, verdict []byte) ([]byte, error) {
	var v struct {
		EventID  string `json:"event_id"`
		AgentID  string `json:"agent_id"`
		Decision string `json:"decision"`
	}
	if err := json.Unmarshal(verdict, &v); err != nil {
		return nil, fmt.Errorf("no review queued for a verdict that does not decode: %w", err)
	}
	if !pipeline.ValidToken(v.AgentID) {
		return nil, fmt.Errorf("no review queued for a verdict of agent %q: not an agent id", v.AgentID)
	}
	r := Review{ID: consumers.ThoughtDigest(msg.Subject(), msg.Data()), EventID: v.EventID, AgentID: v.AgentID,
		VerdictDecision: v.Decision, QueuedAt: time.Now().UTC(), Verdict: verdict, Thought: msg.Data()}
	log := c.log.With().Str("review", r.ID).Str("agent_id", r.AgentID).Str("event_id", r.EventID).Logger()
	if md, err := msg.Metadata(); err == nil && md.NumDelivered > 1 { // an earlier delivery may have stored it
		if held, err := c.held(ctx, r.AgentID, r.ID, log); !errors.Is(err, ErrNotFound) {
			return orVerdict(held, verdict), err
		}
	}
	fresh, err := c.queueBounded(ctx, r, log)
	switch {
	case errors.Is(err, ErrAgentBound):
		return nil, err
	case err == nil && fresh:
		log.Info().Str("verdict", r.VerdictDecision).Msg("review queued")
		return verdict, nil
	case err == nil:
		held, err := c.held(ctx, r.AgentID, r.ID, log)
		return orVerdict(held, verdict), err
	case full(err):
		return nil, fmt.Errorf("%w: %w", ErrFull, &consumers.FullError{Stream: Stream, Err: err})
	case errors.Is(err, jetstream.ErrNoStreamResponse): // NOESIS_REVIEWS was deleted
		if err := Ensure(ctx, c.js, c.cfg); err != nil {
			log.Warn().Err(err).Msg("review stream not set up again")
		}
	}
	return nil, fmt.Errorf("review %s: %w", r.ID, err)
}

// orVerdict is held, or verdict when held is nil (the stored review does
// not decode).
func orVerdict(held, verdict []byte) []byte {
	if held == nil {
		return verdict
	}
	return held
}

// Held returns the verdict that the review stored for the thought in msg
// holds: nil when none is stored, or when it does not decode (logged at
// error and counted: Unreadable). Its error is the read's.
func (c *Clerk) Held(ctx context.Context, msg jetstream.Msg) ([]byte, error) {
	id := consumers.ThoughtDigest(msg.Subject(), msg.Data())
	agent, _ := consumers.SubjectAgent(msg.Subject())
	if !pipeline.ValidToken(agent) {
		agent = ""
	}
	held, err := c.held(ctx, agent, id, c.log.With().Str("review", id).Logger())
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return held, err
}

// Bounded is how many reviews this clerk did not queue because their agent
// had MaxPerAgent waiting (each a thought dead-lettered, its verdict not
// published).
func (c *Clerk) Bounded() uint64 { return c.bounded.Load() }

// Unreadable is how many reviews stored before this clerk found, on a
// thought judged again, that it could not take the verdict from: a review
// that does not decode, or whose verdict is not its own (not of its event
// and agent). The verdict judged again was published instead, and may
// differ from the one under review.
func (c *Clerk) Unreadable() uint64 { return c.unreadable.Load() }

// held reads review id of agent ("" when not known) back and returns the
// verdict it holds. Its error is the read's (ErrNotFound when there is no
// review id); a review that does not decode is logged at error and
// counted, and held returns nil.
func (c *Clerk) held(ctx context.Context, agent, id string, log zerolog.Logger) ([]byte, error) {
	raw, err := findReview(ctx, c.js, agent, id)
	if err != nil {
		return nil, fmt.Errorf("review %s: read back: %w", id, err)
	}
	var r Review
	err = json.Unmarshal(raw.Data, &r)
	var v pipeline.Verdict
	if err == nil {
		v, err = r.ReadVerdict()
	}
	if err == nil && (v.EventID != r.EventID || v.AgentID != r.AgentID) {
		err = fmt.Errorf("its verdict is of event %q of agent %q", v.EventID, v.AgentID)
	}
	if err != nil {
		c.unreadable.Add(1)
		log.Error().Err(err).Uint64("seq", raw.Sequence).
			Msg("the review stored before does not decode: the verdict judged again is published, and may differ from the one under review")
		return nil, nil
	}
	return r.Verdict, nil
}

// store publishes r once. It reports whether it stored r: false, and no
// error, when a review was stored before (the stream refuses the second on
// the subject, or drops it as a duplicate of the message id).
// opts are the publish's further expectations.
func (c *Clerk) store(ctx context.Context, r Review, opts ...jetstream.PublishOpt) (bool, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	m := nats.NewMsg(AgentQueuedSubject(r.AgentID, r.ID))
	m.Data = data
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ack, err := c.js.PublishMsg(pctx, m, append([]jetstream.PublishOpt{jetstream.WithMsgID(r.ID + ":queued"), jetstream.WithExpectStream(Stream)}, opts...)...)
	switch {
	case taken(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return !ack.Duplicate, nil
}

// DropFeeder deletes FeederConsumer, which a deployment upgraded from the
// feeder's version still has on NOESIS_OUTPUTS, where it would keep every
// verdict pending for a reader that is gone. None there is no error.
func DropFeeder(ctx context.Context, js jetstream.JetStream) error {
	err := js.DeleteConsumer(ctx, consumers.StreamOutputs, FeederConsumer)
	if err == nil || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	return fmt.Errorf("delete the old review consumer %s on %s: %w", FeederConsumer, consumers.StreamOutputs, err)
}
