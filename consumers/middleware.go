package consumers

import "context"

// handlerFunc handles one delivery of a thought: it runs the stage on it,
// publishes the output and returns what became of it. Its error is the
// stage's or the publish's; the decided middleware maps it to ack, nak or
// term (result.settle). Like Watermill's HandlerFunc, it is wrapped in
// middleware, each of which does one thing around it.
type handlerFunc func(ctx context.Context, d *delivery) (result, error)

// middleware wraps a handlerFunc in behaviour of its own: the dead-letter
// decision, tracing, counting, the output's log line, recovery, holding a
// rate-limited thought (Watermill's HandlerMiddleware).
type middleware func(handlerFunc) handlerFunc

// wrap wraps h in ms, the first outermost: wrap(h, a, b) runs a, then b,
// then h.
func wrap(h handlerFunc, ms ...middleware) handlerFunc {
	for i := len(ms) - 1; i >= 0; i-- {
		h = ms[i](h)
	}
	return h
}
