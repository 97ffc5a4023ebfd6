package consumers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers/setup"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/retry"
)

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

// EnsureAdvisoryStream creates the stream that keeps the advisories, 7 days
// and at most 64 MiB; when full it drops the oldest (handled long since).
func EnsureAdvisoryStream(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) error {
	cfg = cfg.withDefaults()
	return setup.Stream(ctx, js, jetstream.StreamConfig{
		Name: StreamAdvisories, Description: "noesis: thoughts that ran out of deliveries", Subjects: []string{advisorySubject},
		Storage: cfg.Storage, Replicas: cfg.Replicas, MaxAge: 7 * 24 * time.Hour, MaxBytes: advisoriesMaxBytes, Discard: jetstream.DiscardOld,
	})
}

// reaperTries is how often the reaper tries to store a whole letter for an
// advisory before it stores one that refers to the thought by its sequence.
const reaperTries = 5

// reaperFullWait is how long an advisory whose letter the full DLQ refused
// waits before the reaper tries again.
const reaperFullWait = 30 * time.Second

// reaperSetupPolicy is how the reaper sets its advisories consumer up again
// after losing it: about once a second (±20 %) until ctx ends.
var reaperSetupPolicy = retry.Policy{Initial: time.Second, Max: time.Second, Multiplier: 1, Jitter: 0.2}

// Run consumes advisories until ctx ends, up to 16 at once, so one advisory
// that cannot be handled never holds the others back. If its consumer or
// stream disappears, it sets them up again. It returns nil once ctx has
// ended and every advisory it took is handled.
func (r *Reaper) Run(ctx context.Context) error {
	var handling sync.WaitGroup
	defer handling.Wait()
	sem := make(chan struct{}, 16)
	_, _ = retry.Do(ctx, reaperSetupPolicy, func() (struct{}, error) {
		err := r.consume(ctx, sem, &handling)
		if err != nil && ctx.Err() == nil {
			r.log.Error().Err(err).Msg("reaper: advisories consumer lost; setting it up again")
		}
		return struct{}{}, err
	})
	return nil
}

// consume runs the advisories consumer until ctx ends (then it drains it and
// returns nil) or the consumer is lost (its error). Each advisory is handled
// in a goroutine of its own, counted in handling, at most cap(sem) at once.
func (r *Reaper) consume(ctx context.Context, sem chan struct{}, handling *sync.WaitGroup) error {
	c, err := r.js.CreateOrUpdateConsumer(ctx, StreamAdvisories, jetstream.ConsumerConfig{
		Durable: reaperDurable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: -1, MaxAckPending: 256,
	})
	if err != nil {
		return err
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		sem <- struct{}{}
		handling.Add(1)
		go func() {
			defer handling.Done()
			defer func() { <-sem }()
			hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			r.handle(hctx, m)
		}()
	})
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		cc.Drain()
		<-cc.Closed()
		return nil
	case <-cc.Closed():
		return errors.New("consumer closed")
	}
}

// handle turns one advisory into a dead letter and acks it; it naks it to
// try again later when the thought or the letter's store is not there yet.
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
	if errors.Is(err, ErrStreamFull) {
		// Not the letter's fault: it waits for room, however long, and the
		// backlog shows in the reaper's health meanwhile.
		r.log.Warn().Err(err).Uint64("seq", l.Seq).Msg("dead letters full; the letter waits for room")
		_ = m.NakWithDelay(reaperFullWait)
		return
	}
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
