package pipeline

import "context"

// Handler turns a thought into one stage's output (a *Narrative, *Verdict or
// *Analysis). Its error decides what happens to the thought's message: one
// wrapping ErrBadInput or ErrPermanent dead-letters it, any other error means
// try again later. Handlers must be safe for concurrent use.
type Handler func(ctx context.Context, t Thought) (any, error)

// Processor is a stage implementation: Bridge, Tribunal, Analyst.
type Processor interface {
	Process(ctx context.Context, t Thought) (any, error)
}

var (
	_ Processor = (*Bridge)(nil)
	_ Processor = (*Tribunal)(nil)
	_ Processor = (*Analyst)(nil)
)
