package consumers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
)

// publish sends a stage's output and waits for the stream's PubAck. It
// reports whether the stream already had it.
func (p *Pool) publish(ctx context.Context, t *pipeline.Thought, out pipeline.Output, in jetstream.Msg, log zerolog.Logger) (bool, error) {
	data, err := json.Marshal(out)
	if err != nil {
		return false, fmt.Errorf("%w: encode %s output: %w", pipeline.ErrPermanent, p.cfg.Stage, err)
	}
	m := nats.NewMsg(StoreSubject(OutputSubject(p.cfg.Stage, t.AgentID)))
	m.Data = data
	m.Header.Set(HeaderEventID, t.EventID)
	m.Header.Set(HeaderStage, string(p.cfg.Stage))
	propagator.Inject(ctx, headerCarrier(m.Header)) // the stage span's trace context
	ack, err := publishRetrying(ctx, p.js, m, OutputMsgID(t.EventID, p.cfg.Stage, ThoughtDigest(in.Subject(), in.Data())), StreamOutputs)
	if err != nil {
		return false, fmt.Errorf("%w: publish %s output: %w", pipeline.ErrTransient, p.cfg.Stage, err)
	}
	if ack.Duplicate {
		p.duplicates.Add(1)
		log.Debug().Msg("output was already published; stream dropped the duplicate")
	} else {
		p.published.Add(1)
	}
	return ack.Duplicate, nil
}

// publishRetrying publishes m with a message id and waits for the stream's
// acknowledgement, trying again for up to 30 s while NATS is unreachable (a
// restart, a leader election, a network blip). The id makes every retry safe.
func publishRetrying(ctx context.Context, js jetstream.JetStream, m *nats.Msg, id, stream string) (*jetstream.PubAck, error) {
	return backoff.Retry(ctx, func() (*jetstream.PubAck, error) {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ack, err := js.PublishMsg(pctx, m, jetstream.WithMsgID(id), jetstream.WithExpectStream(stream))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, backoff.Permanent(err)
		}
		return ack, err
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: 2 * time.Second}),
		backoff.WithMaxElapsedTime(30*time.Second))
}
