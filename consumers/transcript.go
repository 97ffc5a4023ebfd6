package consumers

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/noesis-dev/noesis/pipeline"
)

// transcribed is an output that carries how it was reached (a
// *pipeline.Verdict made by a Tribunal).
type transcribed interface {
	Transcript() *pipeline.Transcript
}

// publishTranscript stores the transcript of out, when it has one, before
// out itself is published, unless out is a verdict whose review the pool
// queues (reviewed).
//
// A transcript follows its verdict's fate: it is stored only for a verdict
// that is to be published, and before it (whoever reads a verdict finds its
// transcript already there). Most verdicts are published once stored, so
// their transcripts are stored first of all, here. A verdict that requires
// a person is published only once its review is queued, and is not
// published at all when the queue refuses it (its agent past its bound of
// reviews: the thought is dead-lettered), so queueReview stores its
// transcript between its review and its publish; a refused verdict's
// transcript goes into the thought's dead letter (Noesis-Dlq-Transcript, for
// the operator who replays it), never to the agent, whom it would tell what
// the judges made of a verdict it is not to have
// (TestDeadLetteredVerdictHasNoTranscript, cmd/noesis).
func (p *Pool) publishTranscript(ctx context.Context, d *delivery, out pipeline.Output) error {
	if p.reviewed(out) {
		return nil
	}
	return p.storeTranscript(ctx, d, out)
}

// reviewed reports whether out is a verdict that requires a person and the
// pool queues its review: its transcript waits for its review.
func (p *Pool) reviewed(out pipeline.Output) bool {
	v, ok := out.(*pipeline.Verdict)
	return ok && p.reviews != nil && v.RequiresHumanReview
}

// storeTranscript stores the transcript of out, when it has one, on
// NOESIS_TRANSCRIPTS (_noesis.store.transcripts.<agent>, republished on
// noesis.transcripts.<agent>). It has the output's message id and headers,
// so a redelivered thought's second transcript is dropped as its verdict
// is. A failed publish is transient: the thought is tried again, and its
// verdict, from the cache, published once.
func (p *Pool) storeTranscript(ctx context.Context, d *delivery, out pipeline.Output) error {
	t := &d.thought
	tr, ok := out.(transcribed)
	if !ok || tr.Transcript() == nil {
		return nil
	}
	data, buf, err := encodeScratch(tr.Transcript())
	if err != nil {
		return fmt.Errorf("%w: encode transcript: %w", pipeline.ErrPermanent, err)
	}
	defer buf.release() // publishRetrying has returned: every try's bytes were copied
	hdr := outputHeader(t.EventID, p.cfg.Stage, 0)
	defer hdr.release() // as buf: publishAcked has returned
	m := &nats.Msg{Subject: StoreSubject(TranscriptSubject(t.AgentID)), Data: data, Header: hdr.h}
	propagator.Inject(ctx, headerCarrier(m.Header))
	id := OutputMsgID(t.EventID, p.cfg.Stage, d.digest())
	if _, err := publishAcked(ctx, p.js, m, id, StreamTranscripts, p.acks); err != nil {
		return fmt.Errorf("%w: publish transcript: %w", pipeline.ErrTransient, err)
	}
	return nil
}
