package pipeline

import (
	"context"
	"fmt"
	"runtime/debug"
)

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
// dead-letters it, any other error means try again later. Handlers must be
// safe for concurrent use.
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

// Middleware wraps a Handler with behaviour of its own: recovery, metrics,
// tracing. Middlewares compose with Chain.
type Middleware func(Handler) Handler

// Chain wraps h in ms, the first outermost: Chain(h, a, b) runs a, then b, then h.
func Chain(h Handler, ms ...Middleware) Handler {
	for i := len(ms) - 1; i >= 0; i-- {
		h = ms[i](h)
	}
	return h
}

// ErrPanic marks a handler that panicked: a bug, never a transient failure.
// It wraps ErrPermanent, so the thought is dead-lettered at once.
var ErrPanic = fmt.Errorf("%w: handler panicked", ErrPermanent)

// Recover turns a panic in the handler into an error wrapping ErrPanic, with
// the panic's value in the message and its stack in a PartialError's
// transcript, so the thought is dead-lettered with both and the worker lives.
func Recover(next Handler) Handler {
	return func(ctx context.Context, t Thought) (out Output, err error) {
		defer func() {
			if r := recover(); r != nil {
				out = nil
				err = &PartialError{Err: fmt.Errorf("%w: %v", ErrPanic, r),
					Transcript: map[string]string{"panic": fmt.Sprint(r), "stack": string(debug.Stack())}}
			}
		}()
		return next(ctx, t)
	}
}
