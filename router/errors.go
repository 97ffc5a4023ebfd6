package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/noesis-dev/noesis/pipeline"
)

// The classes of a failed call (CallError.Class, ErrorClass).
const (
	ClassTimeout     = "timeout"
	ClassRateLimited = "rate_limited"
	ClassServer      = "server" // 5xx, 408
	ClassClient      = "client" // 4xx other than 408 and 429: our request, never retried
	ClassCanceled    = "canceled"
	ClassNetwork     = "network" // a lost or refused connection
	ClassBudget      = "budget"
	ClassOther       = "other"
)

// CallError is a failed model call with its facts as fields. It wraps
// pipeline.ErrTransient or pipeline.ErrPermanent (and ErrRateLimited for a
// 429), so callers decide with errors.Is; its message never holds a secret.
type CallError struct {
	Class      string
	Status     int           // the HTTP status, when the provider answered
	Target     string        // the model target's name
	RetryAfter time.Duration // what the provider asked for (its Retry-After), if anything
	msg        string
	kinds      []error
}

func (e *CallError) Error() string   { return e.msg }
func (e *CallError) Unwrap() []error { return e.kinds }

// ErrorClass names the kind of a call error for metrics: one of the Class
// constants. Errors that are not a CallError: budget, rate_limited, canceled,
// timeout (by their sentinels), or other.
func ErrorClass(err error) string {
	var ce *CallError
	switch {
	case errors.As(err, &ce):
		return ce.Class
	case errors.Is(err, pipeline.ErrRateLimited):
		return ClassRateLimited
	case errors.Is(err, pipeline.ErrBudgetExhausted):
		return ClassBudget
	case errors.Is(err, context.Canceled):
		return ClassCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout
	}
	return ClassOther
}

// breaks reports whether an error says the target is broken (and counts
// toward its breaker): timeouts, 5xx, lost connections; not 429 (busy), not
// 4xx (our request), not a cancelled call or an exhausted budget.
func breaks(err error) bool {
	switch ErrorClass(err) {
	case ClassTimeout, ClassServer, ClassNetwork, ClassOther:
		return true
	}
	return false
}

// andThen reports why the tries stopped after the last try's error.
func andThen(last, stop error) error {
	if last == nil {
		return stop
	}
	return fmt.Errorf("%w; then %w", last, stop)
}

// classify turns go-openai's error into a *CallError: its class, status and a
// message with secrets redacted. elapsed is how long the call ran.
func (b *openAIBackend) classify(ctx context.Context, err error, elapsed time.Duration) *CallError {
	where := b.where
	ce := &CallError{Target: b.target}
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	switch {
	case errors.As(err, &apiErr):
		ce.Status = apiErr.HTTPStatusCode
	case errors.As(err, &reqErr):
		ce.Status = reqErr.HTTPStatusCode
	}
	msg := b.redact.Replace(err.Error())
	var netErr net.Error
	transient := []error{pipeline.ErrTransient}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		ce.Class, ce.kinds, ce.msg = ClassTimeout, transient, fmt.Sprintf("%s: no answer within %s", where, elapsed.Round(100*time.Millisecond))
	case errors.Is(err, context.Canceled):
		ce.Class, ce.kinds, ce.msg = ClassCanceled, []error{pipeline.ErrTransient, context.Canceled}, where+": "+context.Canceled.Error()
	case ce.Status == http.StatusTooManyRequests:
		ce.Class, ce.kinds = ClassRateLimited, []error{pipeline.ErrTransient, pipeline.ErrRateLimited}
		ce.msg = fmt.Sprintf("%s: %s: HTTP %d: %s", pipeline.ErrRateLimited, where, ce.Status, msg)
	case ce.Status == http.StatusRequestTimeout || ce.Status >= 500:
		ce.Class, ce.kinds, ce.msg = ClassServer, transient, fmt.Sprintf("%s: HTTP %d: %s", where, ce.Status, msg)
	case ce.Status >= 400:
		ce.Class, ce.kinds, ce.msg = ClassClient, []error{pipeline.ErrPermanent}, fmt.Sprintf("%s: HTTP %d: %s", where, ce.Status, msg)
	case errors.As(err, &netErr):
		ce.Class, ce.kinds, ce.msg = ClassNetwork, transient, fmt.Sprintf("%s: network: %s", where, msg)
	default:
		ce.Class, ce.kinds, ce.msg = ClassOther, transient, where+": "+msg
	}
	prefix := pipeline.ErrTransient.Error()
	if ce.Class == ClassClient {
		prefix = pipeline.ErrPermanent.Error()
	}
	ce.msg = prefix + ": " + ce.msg
	return ce
}
