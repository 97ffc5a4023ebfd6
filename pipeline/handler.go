package pipeline

import "context"

// Output is a stage's result: a *Narrative, *Verdict or *Analysis, each of
// which carries the envelope every output shares.
type Output interface {
	Envelope() *Meta
}

var (
	_ Output = (*Narrative)(nil)
	_ Output = (*Verdict)(nil)
	_ Output = (*Analysis)(nil)
)

// Handler turns a thought into one stage's Output. Its error decides what
// happens to the thought's message: one wrapping ErrBadInput or ErrPermanent
// dead-letters it, any other error means try again later; a panic in it
// dead-letters the thought too (ErrPanic). Handlers must be safe for
// concurrent use.
type Handler func(ctx context.Context, t Thought) (Output, error)

// Processor is a stage implementation: Bridge, Tribunal, Analyst.
type Processor interface {
	Process(ctx context.Context, t Thought) (Output, error)
}

var (
	_ Processor = (*Bridge)(nil)
	_ Processor = (*Tribunal)(nil)
	_ Processor = (*Analyst)(nil)
)
