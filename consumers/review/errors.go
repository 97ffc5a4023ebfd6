package review

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/pipeline"
)

// Errors of the review queue; check them with errors.Is.
var (
	// ErrNotFound: no review has this id (never queued, or aged out).
	ErrNotFound = errors.New("no such review")
	// ErrAlreadyDecided is wrapped by a *DecidedError.
	ErrAlreadyDecided = errors.New("review already decided")
	// ErrInvalid: a decision that is not pass or fail, a blank note, a note
	// or reviewer name too long.
	ErrInvalid = errors.New("invalid decision")
	// ErrFull: NOESIS_REVIEWS has no room for the message (MaxBytes); an
	// operator makes room or raises the bound (docs/operations.md).
	ErrFull = errors.New("the review stream is full")
	// ErrAgentBound is wrapped by a *BoundError: the agent has as many
	// reviews waiting as Config.MaxPerAgent allows.
	ErrAgentBound = errors.New("the agent has as many reviews waiting as it may")
)

// BoundError is a review not queued because its agent has Waiting reviews
// waiting for a person, Bound or more. errors.Is(err, ErrAgentBound) holds,
// and so does errors.Is(err, pipeline.ErrPermanent): the thought is
// dead-lettered at once, not put back (queueBounded says why).
type BoundError struct {
	Agent          string
	Waiting, Bound int
}

func (e *BoundError) Error() string {
	return fmt.Sprintf("agent %s has %d reviews waiting for a person, its bound being %d (NOESIS_AGENT_MAX_REVIEWS): no review queued and no verdict published; replay the thought once the agent's reviews are decided",
		e.Agent, e.Waiting, e.Bound)
}

// Is makes errors.Is(err, ErrAgentBound) and errors.Is(err,
// pipeline.ErrPermanent) hold.
func (e *BoundError) Is(target error) bool {
	return target == ErrAgentBound || target == pipeline.ErrPermanent
}

// DecidedError is a decision refused because the review was decided before:
// Decision is the one stored. errors.Is(err, ErrAlreadyDecided) holds.
type DecidedError struct {
	Decision Ruling
}

func (e *DecidedError) Error() string {
	return fmt.Sprintf("already decided by %s at %s: %s", e.Decision.Reviewer, e.Decision.DecidedAt.UTC().Format(time.RFC3339), e.Decision.Decision)
}

// Is makes errors.Is(err, ErrAlreadyDecided) hold.
func (e *DecidedError) Is(target error) bool { return target == ErrAlreadyDecided }

// jsErrStoreFailed is JetStream's code for a message its limits refuse:
// maximum bytes, messages, or messages per subject (nats-server's errors.json).
const jsErrStoreFailed jetstream.ErrorCode = 10077

// taken reports whether err is the stream refusing a second message on a
// subject that holds one: the review is queued, or decided, already.
func taken(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrStoreFailed && strings.Contains(apiErr.Description, "per subject")
}

// full reports whether err is the stream, the account or the server refusing
// a message for want of room.
func full(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || taken(err) {
		return false
	}
	switch apiErr.ErrorCode {
	case jsErrStoreFailed, 10002, 10023, 10028, 10047: // store failed; account, insufficient, memory, storage resources
		return true
	}
	return false
}

// overtaken reports whether err is a store refused because the last
// message of the subjects it named is not the one expected: another
// worker stored one meanwhile.
func overtaken(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
