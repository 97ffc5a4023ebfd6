package consumers

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/pipeline"
)

// transcribed is an output that carries how it was reached (a
// *pipeline.Verdict made by a Tribunal).
type transcribed interface {
	Transcript() *pipeline.Transcript
}

// publishTranscript stores the transcript of out, when it has one, on
// NOESIS_TRANSCRIPTS (_noesis.store.transcripts.<agent>, republished on
// noesis.transcripts.<agent>), before out itself is published: whoever
// reads a verdict finds its transcript already there. It has the output's
// message id and headers, so a redelivered thought's second transcript is
// dropped as its verdict is. A failed publish is transient: the thought is
// tried again, and its verdict, from the cache, published once.
func (p *Pool) publishTranscript(ctx context.Context, t *pipeline.Thought, out pipeline.Output, in jetstream.Msg) error {
	tr, ok := out.(transcribed)
	if !ok || tr.Transcript() == nil {
		return nil
	}
	data, buf, err := encodeScratch(tr.Transcript())
	if err != nil {
		return fmt.Errorf("%w: encode transcript: %w", pipeline.ErrPermanent, err)
	}
	defer buf.release() // publishRetrying has returned: every try's bytes were copied
	m := nats.NewMsg(StoreSubject(TranscriptSubject(t.AgentID)))
	m.Data = data
	m.Header.Set(HeaderEventID, t.EventID)
	m.Header.Set(HeaderStage, string(p.cfg.Stage))
	propagator.Inject(ctx, headerCarrier(m.Header))
	id := OutputMsgID(t.EventID, p.cfg.Stage, ThoughtDigest(in.Subject(), in.Data()))
	if _, err := publishRetrying(ctx, p.js, m, id, StreamTranscripts); err != nil {
		return fmt.Errorf("%w: publish transcript: %w", pipeline.ErrTransient, err)
	}
	return nil
}
