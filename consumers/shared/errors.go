package shared

import (
	"errors"
	"fmt"
)

// ErrBadCounter is what a CounterError matches with errors.Is.
var ErrBadCounter = errors.New("shared counter does not hold a number of zero or more")

// CounterError is a shared counter whose value is not a number of zero or
// more. It matches ErrBadCounter.
type CounterError struct {
	Bucket, Key string
	Value       string // the first 64 bytes of what the key holds
}

// Error names the key, its bucket and what it holds.
func (e *CounterError) Error() string {
	return fmt.Sprintf("%v: %s in bucket %s holds %q", ErrBadCounter, e.Key, e.Bucket, e.Value)
}

// Unwrap returns ErrBadCounter.
func (e *CounterError) Unwrap() error { return ErrBadCounter }

// ErrBadWorker is what ReadWorkers reports for an entry of the workers bucket
// that is not a worker's announcement.
var ErrBadWorker = errors.New("not a worker's announcement")

// The answer cache's own: an entry that is neither a claim nor an answer
// with content; a claim that lapsed without an answer; a claim still held
// (Await polls on).
var (
	errBadAnswer    = errors.New("not a claim nor an answer with content")
	errClaimGone    = errors.New("the claim lapsed without an answer")
	errStillClaimed = errors.New("still claimed")
)

// errContended is a compare-and-set that lost to another worker.
var errContended = errors.New("counter moved by another worker")
