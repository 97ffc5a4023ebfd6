package consumers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/retry"
)

// FullError is a publish refused for want of room in Stream. Err is
// JetStream's answer.
type FullError struct {
	Stream string
	Err    error
	// Agent is true when the stream has room but not for this agent: it
	// holds its quota of thoughts (StreamsConfig.MaxThoughtsPerAgent).
	Agent bool
}

func (e *FullError) Error() string {
	if e.Agent {
		return fmt.Sprintf("this agent holds its quota of thoughts in %s (NOESIS_AGENT_MAX_THOUGHTS): refused until the workers have done some of those waiting; other agents' thoughts are taken", e.Stream)
	}
	var apiErr *jetstream.APIError
	if errors.As(e.Err, &apiErr) {
		return fmt.Sprintf("noesis is full: %s refused it (%s)", e.Stream, apiErr.Description)
	}
	return fmt.Sprintf("noesis is full: %s refused it (%v)", e.Stream, e.Err)
}

// Is makes errors.Is(err, ErrStreamFull) hold.
func (e *FullError) Is(target error) bool { return target == ErrStreamFull }

// Unwrap returns JetStream's answer.
func (e *FullError) Unwrap() error { return e.Err }

// PublishError returns err, the error of a publish to stream, as a
// *FullError when the stream refused it for want of room, and unchanged
// otherwise. JetStream says "full" with the store-failed code and its limit
// ("maximum bytes exceeded") in the description, or with the
// resources-exceeded codes of the account's or the server's limits.
func PublishError(stream string, err error) error {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	if apiErr.ErrorCode == jsErrStoreFailed && strings.Contains(apiErr.Description, "per subject") {
		return &FullError{Stream: stream, Err: err, Agent: true}
	}
	switch apiErr.ErrorCode {
	case jsErrStoreFailed, jsErrInsufficientResources, jsErrStorageResourcesExceeded, jsErrMemoryResourcesExceeded, jsErrAccountResourcesExceeded:
		return &FullError{Stream: stream, Err: err}
	}
	return err
}

// JetStream's error codes for a store that has no room (nats-server's errors.json).
const (
	jsErrAccountResourcesExceeded jetstream.ErrorCode = 10002
	jsErrInsufficientResources    jetstream.ErrorCode = 10023
	jsErrMemoryResourcesExceeded  jetstream.ErrorCode = 10028
	jsErrStorageResourcesExceeded jetstream.ErrorCode = 10047
	jsErrStoreFailed              jetstream.ErrorCode = 10077 // maximum bytes, messages or messages per subject exceeded
)

// HeaderThoughtSeq is an output's header that holds its thought's sequence
// in NOESIS_THOUGHTS.
const HeaderThoughtSeq = "Noesis-Thought-Seq"

// publish sends a stage's output and waits for the stream's PubAck. It
// reports whether the stream already had it. An output the stream refuses
// for want of room is not the thought's fault: the worker holds the thought
// (its heartbeats keep it) and tries again, backing off up to fullRetryMax,
// until there is room or ctx ends; it spends none of the thought's
// deliveries and is never acked without its output.
func (p *Pool) publish(ctx context.Context, t *pipeline.Thought, out pipeline.Output, in jetstream.Msg, log zerolog.Logger) (bool, error) {
	data, err := json.Marshal(out)
	if err != nil {
		return false, fmt.Errorf("%w: encode %s output: %w", pipeline.ErrPermanent, p.cfg.Stage, err)
	}
	m := nats.NewMsg(StoreSubject(OutputSubject(p.cfg.Stage, t.AgentID)))
	m.Data = data
	m.Header.Set(HeaderEventID, t.EventID)
	m.Header.Set(HeaderStage, string(p.cfg.Stage))
	if md, err := in.Metadata(); err == nil { // where the review queue finds the thought (consumers/review)
		m.Header.Set(HeaderThoughtSeq, strconv.FormatUint(md.Sequence.Stream, 10))
	}
	propagator.Inject(ctx, headerCarrier(m.Header)) // the stage span's trace context
	id := OutputMsgID(t.EventID, p.cfg.Stage, ThoughtDigest(in.Subject(), in.Data()))
	var last error // the last try's: a refusal when ctx ends while the thought is held
	holdWhileFull := retry.Policy{Initial: fullRetryMin, Max: fullRetryMax, Multiplier: 2, Jitter: 0.2,
		OnRetry: func(err error, wait time.Duration) {
			p.tally.add(outcomeStreamFullWait, 0, nil)
			log.Warn().Err(err).Dur("retry_in", wait).Msg("output refused for want of room; holding the thought")
		}}
	ack, err := retry.Do(ctx, holdWhileFull, func() (*jetstream.PubAck, error) {
		ack, err := publishRetrying(ctx, p.js, m, id, StreamOutputs)
		last = err
		if err != nil && !errors.Is(err, ErrStreamFull) {
			return nil, retry.Permanent(err)
		}
		return ack, err
	})
	if err != nil && errors.Is(last, ErrStreamFull) {
		err = last
	}
	if err != nil {
		return false, fmt.Errorf("%w: publish %s output: %w", pipeline.ErrTransient, p.cfg.Stage, err)
	}
	if ack.Duplicate {
		log.Debug().Msg("output was already published; stream dropped the duplicate")
	}
	return ack.Duplicate, nil
}

// How long a worker holding a thought whose output was refused for want of
// room waits before trying again: from fullRetryMin, doubling, to
// fullRetryMax, each wait spread by ±20 %.
const (
	fullRetryMin = 500 * time.Millisecond
	fullRetryMax = 30 * time.Second
)

// publishRetrying publishes m with a message id and waits for the stream's
// acknowledgement, trying again for up to 30 s while NATS is unreachable (a
// restart, a leader election, a network blip). The id makes every retry safe.
// It does not try again when the stream is missing, is full (the error wraps
// ErrStreamFull), or finds the subject taken that opts expected empty
// (errSubjectTaken).
func publishRetrying(ctx context.Context, js jetstream.JetStream, m *nats.Msg, id, stream string, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	opts = append([]jetstream.PublishOpt{jetstream.WithMsgID(id), jetstream.WithExpectStream(stream)}, opts...)
	untilReachable := retry.Exponential(100*time.Millisecond, 2*time.Second)
	untilReachable.MaxElapsed = 30 * time.Second
	return retry.Do(ctx, untilReachable, func() (*jetstream.PubAck, error) {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ack, err := js.PublishMsg(pctx, m, opts...)
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			return ack, nil
		case errors.Is(err, jetstream.ErrStreamNotFound):
			return nil, retry.Permanent(err)
		case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
			return nil, retry.Permanent(fmt.Errorf("%w: %w", errSubjectTaken, err))
		}
		if err := PublishError(stream, err); errors.Is(err, ErrStreamFull) {
			return nil, retry.Permanent(err)
		}
		return ack, err
	})
}
