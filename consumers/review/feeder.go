package review

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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
)

// FeederConsumer is the durable consumer on NOESIS_OUTPUTS's verdicts that
// the feeders of every worker share.
const FeederConsumer = "reviews"

// Feeder queues a review for every verdict that requires human review. It
// reads the verdicts stored in NOESIS_OUTPUTS through a durable consumer
// (FeederConsumer), from the first it holds, and acknowledges a verdict once
// its review is stored (or found stored): a worker or NATS that stops in
// between delivers the verdict again, and the stream refuses the second
// copy of the review. Run it in every worker; they share the consumer.
type Feeder struct {
	js  jetstream.JetStream
	cfg Config
	log zerolog.Logger
}

// NewFeeder returns a feeder that stores reviews into NOESIS_REVIEWS,
// set up with cfg.
func NewFeeder(js jetstream.JetStream, cfg Config, log zerolog.Logger) *Feeder {
	return &Feeder{js: js, cfg: cfg, log: log.With().Str("component", "reviews").Logger()}
}

// consumerConfig is the feeder's durable consumer.
func consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       FeederConsumer,
		Description:   "noesis: queues the verdicts that require human review in " + Stream,
		FilterSubject: consumers.StoreSubject(consumers.OutputSubject(pipeline.StageTribunal, "*")),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 256,
	}
}

// Run queues reviews until ctx ends. It sets up NOESIS_REVIEWS and the
// consumer (and sets them up again when they are deleted), and returns nil
// when ctx ends; an error only for a setup JetStream refuses for good (a
// permission, a bad configuration).
func (f *Feeder) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := f.run(ctx)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if !transient(err) && !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, jetstream.ErrConsumerNotFound) &&
			!errors.Is(err, jetstream.ErrConsumerDeleted) && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return err
		}
		f.log.Warn().Err(err).Msg("review feeder: setting up again")
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// run sets up and consumes until ctx ends (nil) or the consumer fails.
func (f *Feeder) run(ctx context.Context) error {
	if err := Ensure(ctx, f.js, f.cfg); err != nil {
		return err
	}
	cons, err := f.js.CreateOrUpdateConsumer(ctx, consumers.StreamOutputs, consumerConfig())
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", FeederConsumer, consumers.StreamOutputs, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(64))
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		f.take(ctx, msg)
	}
}

// take queues the review of one verdict, when it requires one, and acks,
// naks or terminates the verdict's message.
func (f *Feeder) take(ctx context.Context, msg jetstream.Msg) {
	var v struct {
		EventID             string `json:"event_id"`
		AgentID             string `json:"agent_id"`
		Decision            string `json:"decision"`
		RequiresHumanReview bool   `json:"requires_human_review"`
	}
	if err := json.Unmarshal(msg.Data(), &v); err != nil || v.AgentID == "" {
		f.log.Error().Err(err).Str("subject", msg.Subject()).Msg("not a verdict; no review queued")
		_ = msg.Term()
		return
	}
	if !v.RequiresHumanReview {
		_ = msg.Ack()
		return
	}
	r := Review{ID: reviewID(msg), EventID: v.EventID, AgentID: v.AgentID, VerdictDecision: v.Decision, QueuedAt: time.Now().UTC(), Verdict: msg.Data()}
	r.Thought, r.ThoughtMissing = f.thought(ctx, msg.Headers(), r.ID)
	log := f.log.With().Str("review", r.ID).Str("agent_id", r.AgentID).Str("event_id", r.EventID).Logger()
	err := f.queue(ctx, r)
	switch {
	case err == nil:
		log.Info().Str("verdict", r.VerdictDecision).Msg("review queued")
		_ = msg.Ack()
	case full(err):
		log.Warn().Err(err).Msg("review stream full; holding the verdict")
		_ = msg.NakWithDelay(5 * time.Second)
	default:
		if errors.Is(err, jetstream.ErrNoStreamResponse) { // NOESIS_REVIEWS was deleted
			if err := Ensure(ctx, f.js, f.cfg); err != nil {
				log.Warn().Err(err).Msg("review stream not set up again")
			}
		}
		log.Warn().Err(err).Msg("review not queued yet; will retry")
		_ = msg.NakWithDelay(time.Second)
	}
}

// queue stores r once: a copy already stored is success.
func (f *Feeder) queue(ctx context.Context, r Review) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	m := nats.NewMsg(QueuedSubject(r.ID))
	m.Data = data
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = f.js.PublishMsg(pctx, m, jetstream.WithMsgID(r.ID+":queued"), jetstream.WithExpectStream(Stream))
	if taken(err) {
		return nil
	}
	return err
}

// thought reads the verdict's thought from NOESIS_THOUGHTS by the sequence
// the verdict's header gives, and checks it is the thought the verdict
// judged (its digest is the review's id). It returns why not otherwise.
func (f *Feeder) thought(ctx context.Context, h nats.Header, id string) (json.RawMessage, string) {
	seq, err := strconv.ParseUint(h.Get(consumers.HeaderThoughtSeq), 10, 64)
	if err != nil {
		return nil, "the verdict does not say where its thought is"
	}
	s, err := f.js.Stream(ctx, consumers.StreamThoughts)
	if err != nil {
		return nil, "the thoughts stream could not be read"
	}
	raw, err := s.GetMsg(ctx, seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, "the thought is no longer kept"
	case err != nil:
		return nil, "the thoughts stream could not be read"
	case consumers.ThoughtDigest(raw.Subject, raw.Data) != id || !json.Valid(raw.Data):
		return nil, "the thought is no longer kept"
	}
	return raw.Data, ""
}

// reviewID is the digest in a verdict's message id
// (<event_id>:tribunal:<digest>), or, for a verdict without one, 16 hex
// digits of the sha256 of its subject and bytes.
func reviewID(msg jetstream.Msg) string {
	id := msg.Headers().Get(jetstream.MsgIDHeader)
	if i := strings.LastIndexByte(id, ':'); i >= 0 && len(id)-i-1 == 16 {
		if _, err := hex.DecodeString(id[i+1:]); err == nil {
			return id[i+1:]
		}
	}
	h := sha256.Sum256(append([]byte(msg.Subject()+"\x00"), msg.Data()...))
	return hex.EncodeToString(h[:8])
}
