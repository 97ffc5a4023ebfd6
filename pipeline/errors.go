package pipeline

import (
	"errors"
	"fmt"
	"time"
)

// ErrBadInput marks a thought that can never be processed: invalid JSON, a
// missing or mistyped field, an unknown stage, an oversize payload. Such a
// message is dead-lettered and terminated, never retried.
var ErrBadInput = errors.New("bad input")

// ErrTransient marks a failure that may pass: a timeout, a 429, a 5xx, a lost
// connection. The message carrying the work is redelivered later.
var ErrTransient = errors.New("transient failure")

// ErrPermanent marks a failure that retrying cannot fix: a rejected request
// or bad credentials. The message carrying the work is dead-lettered.
var ErrPermanent = errors.New("permanent failure")

// ErrRequestRefused marks a provider's refusal of one request for what it
// holds: a prompt past the model's context, content its policy refuses, a
// request it cannot read (HTTP 400, 413, 422, or an error code that says so).
// Always alongside ErrPermanent. It says nothing about the provider or the
// model, and other thoughts' requests go through: no circuit breaker counts
// it, and the thought is dead-lettered with the provider's words.
var ErrRequestRefused = errors.New("request refused")

// ErrQuota marks a call refused by its agent's own quota (requests or
// tokens per window: alongside ErrRateLimited and ErrTransient, with the wait,
// and no other target is tried; the month's budget: alongside ErrPermanent,
// and a target that costs nothing may still take the call). It is the
// agent's, not the model target's: no breaker counts it, and the limit of
// thoughts in flight does not shrink for it.
var ErrQuota = errors.New("agent quota")

// ErrRateLimited marks a provider's 429: always alongside ErrTransient. The
// worker holding the thought waits and tries again rather than spending one of
// the thought's deliveries.
var ErrRateLimited = errors.New("rate limited")

// ErrCircuitOpen marks a call not made because a circuit breaker is open
// (a judge's, or every target's of a chain): always alongside ErrTransient.
var ErrCircuitOpen = errors.New("circuit open")

// ErrBudgetExhausted marks a call refused because the thought has made as many
// upstream calls as its budget allows (see WithCallBudget). It is transient:
// a later delivery gets a fresh budget.
var ErrBudgetExhausted = errors.New("upstream call budget exhausted")

// ErrPanic marks a handler that panicked: a bug, never a transient failure.
// It wraps ErrPermanent, so the thought is dead-lettered at once. The
// worker pools' recovery (consumers) returns it, with the panic's stack in a
// PartialError's transcript.
var ErrPanic = fmt.Errorf("%w: handler panicked", ErrPermanent)

// RetryAfterError carries the wait a provider asked for (its Retry-After header).
type RetryAfterError struct {
	Err   error
	After time.Duration
}

// Error returns the wrapped error's message.
func (e *RetryAfterError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns the wait a provider asked for somewhere in err's chain.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > 0 {
		return ra.After, true
	}
	return 0, false
}

// PartialError carries what a stage learned before it failed, such as the
// judges' votes and abstentions, so a dead letter can show it.
type PartialError struct {
	Err        error
	Transcript any
}

// Error returns the wrapped error's message.
func (e *PartialError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PartialError) Unwrap() error { return e.Err }
