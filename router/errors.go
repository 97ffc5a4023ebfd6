package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
)

// The classes of a failed call (CallError.Class, ErrorClass).
const (
	ClassTimeout     = "timeout"
	ClassRateLimited = "rate_limited"
	ClassServer      = "server" // 5xx, 408
	// ClassRequest is a provider's refusal of one request for what it holds
	// (HTTP 400, 413, 422, or a 4xx whose code says context length or
	// content policy): it belongs to that request's thought, never to the
	// target; never retried, counted by no breaker (see apiSaid.refusal).
	ClassRequest  = "request"
	ClassClient   = "client" // other 4xx than 408 and 429 (401, 403, 404...): the account or the endpoint; never retried
	ClassCanceled = "canceled"
	ClassNetwork  = "network" // a lost or refused connection
	ClassBudget   = "budget"
	ClassOther    = "other"
	// ClassOverloaded is a timeout, a 503 or 504, or a lost connection that
	// came of the load we put on a working target (see ErrOverloaded).
	ClassOverloaded = "overloaded"
)

// ErrOverloaded marks a call that failed for the load we put on its target,
// not because the target is broken: the router's per-call timeout, a 503 or
// 504, or a lost connection, while the same target answered other calls of
// ours (it queues what we send; see target.overloaded). It comes alongside pipeline.ErrRateLimited
// and ErrTransient, with a Retry-After, because it is handled as a
// provider's pushback: no breaker counts it, the router does not try the
// target again at once, and the worker holds the thought, shrinks its limit
// and asks again after the wait rather than spending a delivery.
var ErrOverloaded = errors.New("overloaded")

// Why a provider refused a request (CallError.Refusal, with ClassRequest).
const (
	// RefusalContextLength: the prompt and max_tokens exceed the model's
	// context (or the request's size, HTTP 413, the endpoint's limit).
	RefusalContextLength = "context_length"
	// RefusalContentPolicy: the provider's content filter refused it.
	RefusalContentPolicy = "content_policy"
	// RefusalInvalid: anything else the provider could not accept in it.
	RefusalInvalid = "invalid_request"
)

// CallError is a failed model call with its facts as fields. It wraps
// pipeline.ErrTransient or pipeline.ErrPermanent (and ErrRateLimited for a
// 429, ErrRequestRefused for ClassRequest), so callers decide with
// errors.Is; its message never holds a secret.
type CallError struct {
	Class      string
	Status     int           // the HTTP status, when the provider answered
	Target     string        // the model target's name
	RetryAfter time.Duration // what the provider asked for (its Retry-After), if anything
	// What the provider said in its error body, when it answered one: its
	// code (or its type when it gave no code) and its message, trimmed to
	// maxSaid bytes and with every configured secret redacted.
	Code, Message string
	// Refusal says why a ClassRequest call was refused: RefusalContextLength,
	// RefusalContentPolicy or RefusalInvalid; empty for the other classes.
	Refusal string
	msg     string
	kinds   []error
}

// Error returns the call's message: where, what the provider said, never a secret.
func (e *CallError) Error() string { return e.msg }

// Unwrap returns the sentinels the error wraps (pipeline.ErrTransient or
// pipeline.ErrPermanent, and the class's own), for errors.Is.
func (e *CallError) Unwrap() []error { return e.kinds }

// said is what the provider said: its code (or its type) and its message.
func (e *CallError) said() string {
	switch {
	case e.Code != "" && e.Message != "":
		return e.Code + ": " + e.Message
	case e.Message != "":
		return e.Message
	case e.Code != "":
		return e.Code
	}
	return "no error message"
}

// ErrorClass names the kind of a call error for metrics: one of the Class
// constants. Errors that are not a CallError: budget, rate_limited, canceled,
// timeout (by their sentinels), or other.
func ErrorClass(err error) string {
	var ce *CallError
	switch {
	case errors.Is(err, ErrOverloaded):
		return ClassOverloaded
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
// an overload of ours (ErrOverloaded), not 4xx (our request, or our
// account), not a cancelled call or an exhausted budget.
func breaks(err error) bool {
	switch ErrorClass(err) {
	case ClassTimeout, ClassServer, ClassNetwork, ClassOther:
		return true
	}
	return false
}

// final reports whether err holds a refusal that no other target would
// answer differently: a content policy, a malformed request (not a context
// length, which a bigger model may take).
func final(err error) bool {
	if errors.Is(err, pipeline.ErrQuota) && !errors.Is(err, pipeline.ErrPermanent) {
		return true // the agent's requests or tokens, whatever the target
	}
	for _, ce := range callErrors(err) {
		if ce.Class == ClassRequest && ce.Refusal != RefusalContextLength {
			return true
		}
	}
	return false
}

// callErrors returns every *CallError in err's tree, joined or wrapped.
func callErrors(err error) []*CallError {
	if ce, ok := err.(*CallError); ok {
		return []*CallError{ce}
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		var out []*CallError
		for _, e := range u.Unwrap() {
			out = append(out, callErrors(e)...)
		}
		return out
	case interface{ Unwrap() error }:
		return callErrors(u.Unwrap())
	}
	return nil
}

// andThen reports why the tries stopped after the last try's error.
func andThen(last, stop error) error {
	if last == nil {
		return stop
	}
	return fmt.Errorf("%w; then %w", last, stop)
}
