package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
)

// headerNonce marks a decision with the Decide call that stored it, so a
// call whose acknowledgement was lost knows its own decision.
const headerNonce = "Noesis-Review-Nonce"

// Desk is where a reviewer reads and decides reviews. It needs only what
// the shipped reviewer user may do: read NOESIS_REVIEWS and publish
// decisions (docs/security.md). It is safe for concurrent use.
type Desk struct {
	js jetstream.JetStream
}

// NewDesk returns a desk on js's connection.
func NewDesk(js jetstream.JetStream) *Desk { return &Desk{js: js} }

// Review returns review id; ErrNotFound when there is none.
func (d *Desk) Review(ctx context.Context, id string) (Review, error) {
	var r Review
	if !ValidID(id) {
		return r, fmt.Errorf("%w: %q is no review id (16 hex digits)", ErrNotFound, id)
	}
	raw, err := findReview(ctx, d.js, "", id)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(raw.Data, &r); err != nil {
		return r, fmt.Errorf("review %s: %w", id, err)
	}
	return r, nil
}

// Decision returns the decision on review id of agent; ErrNotFound while
// it waits.
func (d *Desk) Decision(ctx context.Context, agentID, id string) (Ruling, error) {
	dec, _, err := d.decision(ctx, agentID, id)
	return dec, err
}

func (d *Desk) decision(ctx context.Context, agentID, id string) (Ruling, string, error) {
	var dec Ruling
	if !ValidID(id) || !pipeline.ValidToken(agentID) {
		return dec, "", ErrNotFound
	}
	raw, err := last(ctx, d.js, DecidedSubject(agentID, id))
	if err != nil {
		return dec, "", err
	}
	if err := json.Unmarshal(raw.Data, &dec); err != nil {
		return dec, "", fmt.Errorf("decision on %s: %w", id, err)
	}
	return dec, raw.Header.Get(headerNonce), nil
}

// last reads the one message of subject; ErrNotFound when there is none.
func last(ctx context.Context, js jetstream.JetStream, subject string) (*jetstream.RawStreamMsg, error) {
	s, err := js.Stream(ctx, Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	raw, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, ErrNotFound
	}
	return raw, err
}

// Decide stores c as the decision on review id, exactly once: the stream
// keeps one decision per review and refuses any other, whoever sends it,
// and republishes the one it keeps on noesis.reviews.<agent_id>. It returns
// the decision stored; a *DecidedError (ErrAlreadyDecided) when another was
// stored first; ErrNotFound for no such review; ErrInvalid for a choice
// that fails Choice.Validate; ErrFull when the stream has no room.
func (d *Desk) Decide(ctx context.Context, id string, c Choice) (Ruling, error) {
	if err := c.Validate(); err != nil {
		return Ruling{}, err
	}
	r, err := d.Review(ctx, id)
	if err != nil {
		return Ruling{}, err
	}
	dec := Ruling{ReviewID: r.ID, EventID: r.EventID, AgentID: r.AgentID, Decision: c.Decision, Note: c.Note,
		Reviewer: c.Reviewer, DecidedAt: time.Now().UTC().Truncate(time.Millisecond), VerdictDecision: r.VerdictDecision}
	data, err := json.Marshal(dec)
	if err != nil {
		return Ruling{}, err
	}
	nonce := uuid.NewString()
	m := nats.NewMsg(DecidedSubject(r.AgentID, r.ID))
	m.Data = data
	m.Header.Set(headerNonce, nonce)
	m.Header.Set(consumers.HeaderEventID, strings.NewReplacer("\r", " ", "\n", " ").Replace(r.EventID)) // as on the outputs
	ack, err := d.js.PublishMsg(ctx, m, jetstream.WithMsgID(r.ID+":decided"), jetstream.WithExpectStream(Stream))
	switch {
	case err == nil && !ack.Duplicate:
		return dec, nil
	case err == nil || taken(err): // stored before: by this call (a retry) or by someone else
		stored, storedNonce, gerr := d.decision(ctx, r.AgentID, r.ID)
		if gerr != nil {
			return Ruling{}, fmt.Errorf("review %s was decided, and the decision could not be read: %w", id, gerr)
		}
		if storedNonce == nonce {
			return stored, nil
		}
		return Ruling{}, &DecidedError{Decision: stored}
	case full(err):
		return Ruling{}, fmt.Errorf("%w: %w", ErrFull, err)
	}
	return Ruling{}, fmt.Errorf("decide review %s: %w", id, err)
}

// ValidID reports whether s can be a review id: 16 lower-case hex digits.
func ValidID(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
