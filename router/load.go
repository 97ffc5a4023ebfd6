package router

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
)

// overloaded reports whether err, a failed call to t sent at sent, came of
// the load we put on t rather than of t being broken. A provider that
// generates a few answers at a time and queues the rest answers ever later
// as we send more, until calls pass their timeout while it keeps answering;
// its breaker must not open for that, and we must send less. The call is
// overload when both hold:
//
//   - it failed as a queue fails: the router's own per-call timeout (not a
//     timeout the request set for itself, such as a judge's, which is that
//     judge's rule), a 503 or 504, or a lost connection; never a 500, a 4xx
//     or a 429, which say something else;
//   - the target answered another call of ours after this one was sent: it
//     works, and this call waited behind the others.
//
// A target that answers nothing while a call waits is failing: that still
// counts toward its breaker.
func (t *target) overloaded(err error, req *pipeline.Request, sent time.Time) bool {
	var ce *CallError
	if !errors.As(err, &ce) {
		return false
	}
	switch {
	case ce.Class == ClassTimeout && req.Timeout <= 0, ce.Class == ClassNetwork:
	case ce.Class == ClassServer && (ce.Status == http.StatusServiceUnavailable || ce.Status == http.StatusGatewayTimeout):
	default:
		return false
	}
	return t.lastCall.Load() > sent.UnixNano()
}

// overload makes err, a call found overloaded, an ErrOverloaded that the
// worker holds its thought for, to ask again after the router's backoff.
func (t *target) overload(err error) error {
	return &pipeline.RetryAfterError{After: t.cfg.Backoff, Err: fmt.Errorf("%w: %w: %s answered other calls of ours while this one waited: %w",
		ErrOverloaded, pipeline.ErrRateLimited, t.Name, err)}
}
