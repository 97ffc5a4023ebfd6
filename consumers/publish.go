package consumers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

// encode is out as the pool publishes it, in a buffer lent until release
// (encodeScratch: a fresh 10 KB verdict was a tenth of the bytes a worker
// allocated on cache hits); its review (reviews.go) stores these very bytes.
func (p *Pool) encode(out pipeline.Output) ([]byte, *scratch, error) {
	data, buf, err := encodeScratch(out)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: encode %s output: %w", pipeline.ErrPermanent, p.cfg.Stage, err)
	}
	return data, buf, nil
}

// publish sends a stage's output, encoded in data, and waits for the
// stream's PubAck. It reports whether the stream already had it. An output
// the stream refuses for want of room is not the thought's fault: the
// thought is held (holdWhileFull) until there is room or ctx ends; it is
// never acked without its output.
func (p *Pool) publish(ctx context.Context, d *delivery, data []byte) (bool, error) {
	t := &d.thought
	hdr := outputHeader(t.EventID, p.cfg.Stage, d.seq) // with the thought's place in NOESIS_THOUGHTS, for whoever reads the output
	defer hdr.release()                                // the publish has returned: its bytes were sent or copied
	m := &nats.Msg{Subject: StoreSubject(OutputSubject(p.cfg.Stage, t.AgentID)), Data: data, Header: hdr.h}
	propagator.Inject(ctx, headerCarrier(m.Header)) // the stage span's trace context
	id := OutputMsgID(t.EventID, p.cfg.Stage, d.digest())
	var ack *jetstream.PubAck
	err := p.holdWhileFull(ctx, d, "output", func() (err error) {
		ack, err = publishAcked(ctx, p.js, m, id, StreamOutputs, p.acks)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("%w: publish %s output: %w", pipeline.ErrTransient, p.cfg.Stage, err)
	}
	if ack.Duplicate {
		d.debug().Msg("output was already published; stream dropped the duplicate")
	}
	return ack.Duplicate, nil
}

// header is the header of a stage's output or transcript (outputHeader),
// lent until release: a publish writes its header into the bytes it sends
// (nats.Msg's headerBytes) and keeps nothing of the map, so the map and
// its values serve the next publish (a fresh map a publish was 9 % of the
// bytes a worker allocated on cache hits).
type header struct {
	h    nats.Header
	vals [3]string
}

var headers = sync.Pool{New: func() any { return &header{h: make(nats.Header, 6)} }}

// outputHeader is the header of a stage's output or transcript: the
// thought's event id, the stage and, when not 0, the thought's sequence in
// NOESIS_THOUGHTS, with room for publishMsg's two.
func outputHeader(eventID string, stage pipeline.Stage, seq uint64) *header {
	hd := headers.Get().(*header)
	hd.vals[0], hd.vals[1] = eventID, string(stage)
	hd.h[HeaderEventID], hd.h[HeaderStage] = hd.vals[0:1:1], hd.vals[1:2:2]
	if seq != 0 {
		hd.vals[2] = strconv.FormatUint(seq, 10)
		hd.h[HeaderThoughtSeq] = hd.vals[2:3:3]
	}
	return hd
}

// release gives the header back once its publish has returned; nothing
// may read it after.
func (hd *header) release() {
	clear(hd.h)
	hd.vals = [3]string{}
	headers.Put(hd)
}

// holdWhileFull runs store until it succeeds, fails for another reason than
// a stream with no room (an error that wraps ErrStreamFull), or ctx ends.
// While the stream is full the worker holds the thought (its heartbeats keep
// it) and tries again, backing off from fullRetryMin to fullRetryMax; the
// waits spend none of the thought's deliveries. It returns store's last
// error: a refusal for want of room when ctx ends while the thought is held.
func (p *Pool) holdWhileFull(ctx context.Context, d *delivery, what string, store func() error) error {
	var last error
	policy := retry.Policy{Initial: fullRetryMin, Max: fullRetryMax, Multiplier: 2, Jitter: 0.2,
		OnRetry: func(err error, wait time.Duration) {
			p.tally.add(outcomeStreamFullWait, 0, nil)
			d.logger().Warn().Err(err).Dur("retry_in", wait).Msg(what + " refused for want of room; holding the thought")
		}}
	_, err := retry.Do(ctx, policy, func() (struct{}, error) {
		last = store()
		if last != nil && !errors.Is(last, ErrStreamFull) {
			return struct{}{}, retry.Permanent(last)
		}
		return struct{}{}, last
	})
	if err != nil && errors.Is(last, ErrStreamFull) {
		err = last
	}
	return err
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
// ErrStreamFull), or finds the subject taken that m's headers expected empty
// (errSubjectTaken). Each try is publishMsg's: jetstream's PublishMsg with
// the id and the stream expected, reading the PubAck without reflection.
func publishRetrying(ctx context.Context, js jetstream.JetStream, m *nats.Msg, id, stream string) (*jetstream.PubAck, error) {
	return publishAcked(ctx, js, m, id, stream, nil)
}

// ackTimeout is how long a publish waits for its PubAck before trying again.
const ackTimeout = 5 * time.Second

// publishAcked is publishRetrying, each try's wait for the PubAck bounded by
// acks (a pool's shared deadlines) when it is not nil.
func publishAcked(ctx context.Context, js jetstream.JetStream, m *nats.Msg, id, stream string, acks *ackDeadlines) (*jetstream.PubAck, error) {
	untilReachable := retry.Exponential(100*time.Millisecond, 2*time.Second)
	untilReachable.MaxElapsed = 30 * time.Second
	return retry.Do(ctx, untilReachable, func() (*jetstream.PubAck, error) {
		pctx, cancel := acks.within(ctx)
		defer cancel()
		ack, err := publishMsg(pctx, js.Conn(), m, id, stream)
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

// ackDeadlines hands a pool's publishes the contexts their waits for a
// PubAck end with: one context made a second, ending ackTimeout to a second
// more after each use, shared by every publish of that second, instead of a
// context and a timer a try (three publishes a thought: 4 % of a worker's
// processor on cache hits). It serves only a context whose cancellation is
// the run's own (done, the pool's work's); another gets its own timeout.
// The shared contexts carry no caller's values. Safe for concurrent use.
type ackDeadlines struct {
	done <-chan struct{} // the pool's work's Done, for this run

	mu     sync.Mutex
	shared context.Context // ends ackTimeout+time.Second after fresh, or with the work
	fresh  time.Time
	made   []func() // release each shared context made, oldest first
}

// newAckDeadlines returns the deadlines of a run whose work ends with done.
func newAckDeadlines(done <-chan struct{}) *ackDeadlines { return &ackDeadlines{done: done} }

// within returns a context that ends when ctx does or ackTimeout to
// ackTimeout plus a second from now, and what to call once done with it.
// acks may be nil.
func (a *ackDeadlines) within(ctx context.Context) (context.Context, context.CancelFunc) {
	if a == nil || ctx.Done() != a.done {
		return context.WithTimeout(ctx, ackTimeout)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	if a.shared == nil || now.Sub(a.fresh) >= time.Second {
		if len(a.made) > int(ackTimeout/time.Second)+2 { // past its deadline: nobody waits on it
			a.made[0]()
			a.made = a.made[1:]
		}
		shared, cancel := context.WithTimeout(context.Background(), ackTimeout+time.Second)
		stop := context.AfterFunc(ctx, cancel) // ctx ends with the work alone
		a.shared, a.fresh = shared, now
		a.made = append(a.made, func() { stop(); cancel() })
	}
	return a.shared, func() {}
}
