package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
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
// first review and refuses the second. It is safe for concurrent use.
type Clerk struct {
	js  jetstream.JetStream
	cfg Config
	log zerolog.Logger
}

// NewClerk returns a clerk that stores reviews into NOESIS_REVIEWS, which
// it sets up again with cfg when it finds it deleted. Ensure it first.
func NewClerk(js jetstream.JetStream, cfg Config, log zerolog.Logger) *Clerk {
	return &Clerk{js: js, cfg: cfg, log: log.With().Str("component", "reviews").Logger()}
}

// Queue stores the review of verdict (the bytes the pool publishes) of the
// thought in msg, once: its id is the thought's digest, and a review already
// stored under it is success. It returns an error that wraps both ErrFull
// and consumers.ErrStreamFull when NOESIS_REVIEWS has no room; else the
// decoding's or the publish's error (the stream set up again first when it
// was deleted).
func (c *Clerk) Queue(ctx context.Context, msg jetstream.Msg, verdict []byte) error {
	var v struct {
		EventID  string `json:"event_id"`
		AgentID  string `json:"agent_id"`
		Decision string `json:"decision"`
	}
	if err := json.Unmarshal(verdict, &v); err != nil {
		return fmt.Errorf("no review queued for a verdict that does not decode: %w", err)
	}
	r := Review{ID: consumers.ThoughtDigest(msg.Subject(), msg.Data()), EventID: v.EventID, AgentID: v.AgentID,
		VerdictDecision: v.Decision, QueuedAt: time.Now().UTC(), Verdict: verdict, Thought: msg.Data()}
	log := c.log.With().Str("review", r.ID).Str("agent_id", r.AgentID).Str("event_id", r.EventID).Logger()
	err := c.store(ctx, r)
	switch {
	case err == nil:
		log.Info().Str("verdict", r.VerdictDecision).Msg("review queued")
		return nil
	case full(err):
		return fmt.Errorf("%w: %w", ErrFull, &consumers.FullError{Stream: Stream, Err: err})
	case errors.Is(err, jetstream.ErrNoStreamResponse): // NOESIS_REVIEWS was deleted
		if err := Ensure(ctx, c.js, c.cfg); err != nil {
			log.Warn().Err(err).Msg("review stream not set up again")
		}
	}
	return fmt.Errorf("review %s: %w", r.ID, err)
}

// store publishes r once: a copy already stored is success.
func (c *Clerk) store(ctx context.Context, r Review) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	m := nats.NewMsg(QueuedSubject(r.ID))
	m.Data = data
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = c.js.PublishMsg(pctx, m, jetstream.WithMsgID(r.ID+":queued"), jetstream.WithExpectStream(Stream))
	if taken(err) {
		return nil
	}
	return err
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
