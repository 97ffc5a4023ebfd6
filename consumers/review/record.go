package review

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/noesis-dev/noesis/pipeline"
)

// Review is one verdict waiting for a person (docs/contract/schemas/review.json).
type Review struct {
	// ID is the digest of the thought the verdict judged (package doc).
	ID      string `json:"id"`
	EventID string `json:"event_id"`
	AgentID string `json:"agent_id"`
	// VerdictDecision is the verdict's decision: review, capital or unavailable.
	VerdictDecision string    `json:"verdict_decision"`
	QueuedAt        time.Time `json:"queued_at"`
	// Verdict is the verdict as the agent got it, byte for byte.
	Verdict json.RawMessage `json:"verdict"`
	// Thought is the thought as the agent published it. ThoughtMissing says
	// why a review has none: only reviews queued by earlier versions, which
	// read the thought back from NOESIS_THOUGHTS, can lack it.
	Thought        json.RawMessage `json:"thought,omitempty"`
	ThoughtMissing string          `json:"thought_missing,omitempty"`
}

// ReadVerdict decodes the review's verdict.
func (r Review) ReadVerdict() (pipeline.Verdict, error) {
	var v pipeline.Verdict
	err := json.Unmarshal(r.Verdict, &v)
	return v, err
}

// ReadThought decodes the review's thought; ok is false when it has none or
// it does not decode.
func (r Review) ReadThought() (t pipeline.Thought, ok bool) {
	if len(r.Thought) == 0 {
		return t, false
	}
	return t, json.Unmarshal(r.Thought, &t) == nil
}

// The two decisions a person may give.
const (
	Pass = "pass"
	Fail = "fail"
)

// Bounds of what a person writes.
const (
	MaxNoteRunes     = 2000
	MaxReviewerRunes = 128
)

// Ruling is a person's decision on a review, as stored and as published on
// noesis.reviews.<agent_id> (docs/contract/schemas/review-decision.json).
type Ruling struct {
	ReviewID string `json:"review_id"`
	EventID  string `json:"event_id"`
	AgentID  string `json:"agent_id"`
	// Decision is pass or fail.
	Decision string `json:"decision"`
	Note     string `json:"note"`
	// Reviewer is who decided: the NATS user they logged in as.
	Reviewer  string    `json:"reviewer"`
	DecidedAt time.Time `json:"decided_at"`
	// VerdictDecision is the verdict's own decision (review, capital, unavailable).
	VerdictDecision string `json:"verdict_decision"`
}

// Choice is what a reviewer asks for: a decision, a note and who they are.
type Choice struct {
	Decision, Note, Reviewer string
}

// Validate returns an error wrapping ErrInvalid when c cannot be stored:
// a decision other than pass or fail, a blank note (a person says why), a
// note over MaxNoteRunes, a blank reviewer or one over MaxReviewerRunes, or
// text that is not UTF-8.
func (c Choice) Validate() error {
	switch {
	case c.Decision != Pass && c.Decision != Fail:
		return fmt.Errorf("%w: decision %q: want pass or fail", ErrInvalid, c.Decision)
	case strings.TrimSpace(c.Note) == "":
		return fmt.Errorf("%w: a note is required: say why", ErrInvalid)
	case utf8.RuneCountInString(c.Note) > MaxNoteRunes:
		return fmt.Errorf("%w: the note is longer than %d characters", ErrInvalid, MaxNoteRunes)
	case strings.TrimSpace(c.Reviewer) == "":
		return fmt.Errorf("%w: no reviewer name", ErrInvalid)
	case utf8.RuneCountInString(c.Reviewer) > MaxReviewerRunes:
		return fmt.Errorf("%w: the reviewer name is longer than %d characters", ErrInvalid, MaxReviewerRunes)
	case !utf8.ValidString(c.Note) || !utf8.ValidString(c.Reviewer):
		return fmt.Errorf("%w: the note or the reviewer is not UTF-8", ErrInvalid)
	}
	return nil
}

// Summary is what the Index keeps of a review: enough for a list.
type Summary struct {
	ID, EventID, AgentID, VerdictDecision string
	QueuedAt                              time.Time
	// Decided is the review's decision, nil while it waits.
	Decided *Ruling
}

// Waiting reports whether the review has no decision yet.
func (s Summary) Waiting() bool { return s.Decided == nil }
