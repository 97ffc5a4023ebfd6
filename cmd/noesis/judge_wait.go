package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/pipeline"
)

// judgeReview is a person's decision on a verdict that required one, as
// the review queue publishes it, and its bytes as they came.
type judgeReview struct {
	review.Ruling
	raw []byte
}

// judgeDeadLetter says the thought was dead-lettered, at stage, for reason.
type judgeDeadLetter struct{ stage, reason string }

// Error says where and why the thought was dead-lettered.
func (e *judgeDeadLetter) Error() string { return "dead-lettered at " + e.stage + ": " + e.reason }

// judgeAnswers receives, from subscriptions made before the thought is
// published, the messages judge waits for about that one thought: its
// verdict and narrative (by their Nats-Msg-Id), the notices of its dead
// letters (by its event_id and digest) or, with --dlq, the letters themselves
// (by their subject and bytes), and reviews of its event. Each
// subscription's callback only filters and hands over, without blocking.
type judgeAnswers struct {
	verdict   chan *nats.Msg
	narrative chan *nats.Msg
	letters   chan *judgeDeadLetter
	reviews   chan judgeReview
	subs      []*nats.Subscription
	// noNotices says why the agent's dead-letter notices cannot be heard
	// (an access control set up before them); nil when they can.
	noNotices error
}

// subscribeAnswers subscribes to what req waits for and flushes, so the
// server has every subscription before the thought is published. A
// subscription the server refuses (a login that may not read the subject)
// is an error that says which.
func subscribeAnswers(nc *nats.Conn, req judgeRequest) (*judgeAnswers, error) {
	a := &judgeAnswers{
		verdict:   make(chan *nats.Msg, 1),
		narrative: make(chan *nats.Msg, 1),
		letters:   make(chan *judgeDeadLetter, 4),
		reviews:   make(chan judgeReview, 16),
	}
	agent := req.thought.AgentID
	refused, err := a.subscribeNotices(nc, req)
	if err != nil {
		return nil, fmt.Errorf("subscribe before publishing: %w", err)
	}
	a.sub(nc, consumers.OutputSubject(pipeline.StageTribunal, agent), byMsgID(req.outputID(pipeline.StageTribunal), a.verdict))
	stages := []pipeline.Stage{consumers.StageInput, pipeline.StageTribunal}
	if req.narrative {
		a.sub(nc, consumers.OutputSubject(pipeline.StageNarrative, agent), byMsgID(req.outputID(pipeline.StageNarrative), a.narrative))
		stages = append(stages, pipeline.StageNarrative)
	}
	if req.waitReview {
		a.sub(nc, review.PublicSubject(agent), a.reviewsOf(req))
	}
	if req.dlq {
		for _, s := range stages {
			a.sub(nc, consumers.DLQSubject(s), lettersOf(req, a.letters))
		}
	}
	err = nc.Flush()
	if err == nil {
		// The server answers a refused SUB before the flush's PONG.
		if last := nc.LastError(); last != refused && errors.Is(last, nats.ErrPermissionViolation) {
			err = fmt.Errorf("%w (under nats-auth.conf an agent reads only its own outputs and reviews; --dlq needs an operator's login)", last)
		}
	}
	for _, s := range a.subs {
		if s == nil && err == nil {
			err = errors.New("subscribe: the connection refused a subscription")
		}
	}
	if err != nil {
		a.close()
		return nil, fmt.Errorf("subscribe before publishing: %w", err)
	}
	return a, nil
}

// subscribeNotices subscribes to the agent's dead-letter notices and
// flushes. A server that refuses it (an agent's account set up before the
// notices, without their import) leaves judge as it was before them: the
// refusal is kept in a.noNotices, and returned, to be told from another.
func (a *judgeAnswers) subscribeNotices(nc *nats.Conn, req judgeRequest) (refused error, err error) {
	subject := consumers.NoticeSubject(req.thought.AgentID)
	s, err := nc.Subscribe(subject, noticesOf(req, a.letters))
	if err != nil {
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		_ = s.Unsubscribe()
		return nil, err
	}
	if last := nc.LastError(); errors.Is(last, nats.ErrPermissionViolation) && strings.Contains(last.Error(), `"`+subject+`"`) {
		_ = s.Unsubscribe()
		a.noNotices = last
		return last, nil
	}
	a.subs = append(a.subs, s)
	return nil, nil
}

// sub subscribes cb to subject; a failure shows as a nil subscription.
func (a *judgeAnswers) sub(nc *nats.Conn, subject string, cb nats.MsgHandler) {
	s, _ := nc.Subscribe(subject, cb)
	a.subs = append(a.subs, s)
}

// close unsubscribes; safe twice.
func (a *judgeAnswers) close() {
	for _, s := range a.subs {
		if s != nil {
			_ = s.Unsubscribe()
		}
	}
	a.subs = nil
}

// offerFirst hands m to ch without blocking: a channel holds the first answers.
func offerFirst[T any](ch chan T, m T) {
	select {
	case ch <- m:
	default:
	}
}

// byMsgID takes the output whose Nats-Msg-Id is id: this thought's, and no
// other thought's under the same event_id.
func byMsgID(id string, ch chan *nats.Msg) nats.MsgHandler {
	return func(m *nats.Msg) {
		if m.Header.Get(nats.MsgIdHdr) == id {
			offerFirst(ch, m)
		}
	}
}

// lettersOf takes the dead letters of req's thought: its subject, and its
// bytes (or, for a letter that keeps only their first bytes, their sha256).
func lettersOf(req judgeRequest, ch chan *judgeDeadLetter) nats.MsgHandler {
	sum := sha256.Sum256(req.data)
	digest := hex.EncodeToString(sum[:])
	return func(m *nats.Msg) {
		if m.Header.Get(consumers.HeaderDLQSubject) != req.subject {
			return
		}
		if bytes.Equal(m.Data, req.data) || (m.Header.Get(consumers.HeaderDLQTruncated) == "true" && m.Header.Get(consumers.HeaderDLQDigest) == digest) {
			offerFirst(ch, &judgeDeadLetter{stage: m.Header.Get(consumers.HeaderStage), reason: m.Header.Get(consumers.HeaderDLQReason)})
		}
	}
}

// noticesOf takes the dead-letter notices of req's thought: its event_id
// and its digest (as in its verdict's Nats-Msg-Id), so another thought
// under the same event_id is not taken for it.
func noticesOf(req judgeRequest, ch chan *judgeDeadLetter) nats.MsgHandler {
	digest := consumers.ThoughtDigest(req.subject, req.data)
	return func(m *nats.Msg) {
		var n consumers.Notice
		if json.Unmarshal(m.Data, &n) != nil || n.EventID != req.thought.EventID || n.ThoughtDigest != digest {
			return
		}
		offerFirst(ch, &judgeDeadLetter{stage: n.Stage, reason: n.Reason})
	}
}

// reviewsOf takes the decisions on t's review: its review_id is the
// thought's digest (consumers/review); a decision without one is taken by
// its event and agent. Only pass and fail are decisions.
func (a *judgeAnswers) reviewsOf(req judgeRequest) nats.MsgHandler {
	t, digest := req.thought, consumers.ThoughtDigest(req.subject, req.data)
	return func(m *nats.Msg) {
		var r judgeReview
		if json.Unmarshal(m.Data, &r.Ruling) != nil || r.EventID != t.EventID || (r.AgentID != "" && r.AgentID != t.AgentID) {
			return
		}
		if (r.ReviewID != "" && r.ReviewID != digest) || (r.Ruling.Decision != review.Pass && r.Ruling.Decision != review.Fail) {
			return
		}
		r.raw = m.Data
		offerFirst(a.reviews, r)
	}
}

// judgeResult is what came for a thought: its verdict, as read and as sent, and
// its narrative when asked for.
type judgeResult struct {
	verdict          pipeline.Verdict
	verdictRaw       []byte
	narrative        *pipeline.Narrative
	narrativeRaw     []byte
	narrativeMissing string // why an asked-for narrative did not come
}

// await waits up to req.timeout for the verdict, and for the narrative with
// req.narrative. A dead letter for the thought (input or tribunal) ends the
// wait with a *judgeDeadLetter; one for the narrative only stops the wait for
// it. Past the timeout with the verdict in, the narrative is given up;
// without it the error wraps context.DeadlineExceeded. ctx's end wraps
// context.Canceled.
func (a *judgeAnswers) await(ctx context.Context, req judgeRequest) (judgeResult, error) {
	var got judgeResult
	timer := time.NewTimer(req.timeout)
	defer timer.Stop()
	haveVerdict, needNarrative := false, req.narrative
	for !haveVerdict || needNarrative {
		select {
		case m := <-a.verdict:
			if err := json.Unmarshal(m.Data, &got.verdict); err != nil {
				return got, fmt.Errorf("read the verdict: %w", err)
			}
			got.verdictRaw, haveVerdict = m.Data, true
		case m := <-a.narrative:
			got.narrative = new(pipeline.Narrative)
			if err := json.Unmarshal(m.Data, got.narrative); err != nil {
				return got, fmt.Errorf("read the narrative: %w", err)
			}
			got.narrativeRaw, needNarrative = m.Data, false
		case l := <-a.letters:
			if l.stage != string(pipeline.StageNarrative) {
				return got, l
			}
			got.narrativeMissing, needNarrative = "the narrative was dead-lettered: "+l.reason, false
		case <-timer.C:
			if !haveVerdict {
				return got, context.DeadlineExceeded
			}
			got.narrativeMissing, needNarrative = fmt.Sprintf("no narrative within %s", req.timeout), false
		case <-ctx.Done():
			return got, fmt.Errorf("%w", context.Canceled)
		}
	}
	return got, nil
}

// awaitReview waits up to req.reviewTimeout for a person's decision on the
// verdict, whose decision was verdict: a decision naming another verdict
// decision is of another thought under the same event_id, and is passed over. Its
// errors wrap context.DeadlineExceeded or context.Canceled.
func (a *judgeAnswers) awaitReview(ctx context.Context, req judgeRequest, verdict pipeline.Decision) (judgeReview, error) {
	timer := time.NewTimer(req.reviewTimeout)
	defer timer.Stop()
	for {
		select {
		case r := <-a.reviews:
			if r.VerdictDecision == "" || r.VerdictDecision == string(verdict) {
				return r, nil
			}
		case <-timer.C:
			return judgeReview{}, context.DeadlineExceeded
		case <-ctx.Done():
			return judgeReview{}, fmt.Errorf("%w", context.Canceled)
		}
	}
}
