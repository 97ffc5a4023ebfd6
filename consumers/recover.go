package consumers

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/noesis-dev/noesis/pipeline"
)

// recovered is the middleware that turns a panic in what it wraps (the
// stage's work, or the publish of its output) into an error wrapping
// pipeline.ErrPanic, with the panic's value in the message and its stack in
// a PartialError's transcript: the thought is dead-lettered with both and
// the worker lives.
func recovered(next handlerFunc) handlerFunc {
	return func(ctx context.Context, d *delivery) (r result, err error) {
		defer func() {
			if v := recover(); v != nil {
				r = result{}
				err = &pipeline.PartialError{Err: fmt.Errorf("%w: %v", pipeline.ErrPanic, v),
					Transcript: map[string]string{"panic": fmt.Sprint(v), "stack": string(debug.Stack())}}
			}
		}()
		return next(ctx, d)
	}
}
