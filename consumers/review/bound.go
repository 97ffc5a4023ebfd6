package review

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// findReview reads review id of agent; agent "" when it is not known (a
// reviewer asks by id alone). A review earlier versions stored without its
// agent (QueuedSubject) is found too. ErrNotFound when there is none.
func findReview(ctx context.Context, js jetstream.JetStream, agent, id string) (*jetstream.RawStreamMsg, error) {
	if agent == "" {
		agent = "*"
	}
	raw, err := last(ctx, js, AgentQueuedSubject(agent, id))
	if errors.Is(err, ErrNotFound) {
		return last(ctx, js, QueuedSubject(id))
	}
	return raw, err
}

// waiting counts agent's reviews that wait for a decision: those stored
// under its queued subjects without a decision under its decided ones. Two
// requests to the stream, each naming at most the agent's reviews. Reviews
// earlier versions stored without their agent are not counted.
func waiting(ctx context.Context, js jetstream.JetStream, agent string) (int, error) {
	s, err := js.Stream(ctx, Stream)
	if err != nil {
		return 0, err
	}
	ids := func(prefix string) (map[string]bool, error) {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(prefix+agent+".*"))
		if err != nil {
			return nil, err
		}
		out := make(map[string]bool, len(info.State.Subjects))
		for subject := range info.State.Subjects {
			out[subject[strings.LastIndexByte(subject, '.')+1:]] = true
		}
		return out, nil
	}
	queued, err := ids(QueuedPrefix)
	if err != nil {
		return 0, err
	}
	decided, err := ids(DecidedPrefix)
	if err != nil {
		return 0, err
	}
	n := 0
	for id := range queued {
		if !decided[id] {
			n++
		}
	}
	return n, nil
}

// agentFilter matches the subjects of agent's reviews.
func agentFilter(agent string) string { return QueuedPrefix + agent + ".*" }

// lastQueued is the sequence of agent's last review stored, 0 for none.
func lastQueued(ctx context.Context, js jetstream.JetStream, agent string) (uint64, error) {
	raw, err := last(ctx, js, agentFilter(agent))
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return raw.Sequence, nil
}

// boundTries is how often queueBounded counts again after another worker
// stored a review of the same agent between its count and its store.
const boundTries = 8

// queueBounded stores r while its agent has fewer than MaxPerAgent reviews
// waiting, and reports whether it stored it (false: stored before). The
// bound holds however many workers queue the agent's reviews at once: the
// store expects the agent's last review to be the one seen before the
// count (JetStream's expected last sequence of the agent's subjects), so a
// review another worker stored meanwhile makes it count again.
//
// Past the bound its error is a *BoundError (ErrAgentBound and
// pipeline.ErrPermanent): the pool dead-letters the thought at once with
// that reason, its verdict not published, and its agent is told on
// noesis.deadletters.<agent>. A verdict that requires a person is thus
// never published without its review, and never approves anything by
// default. The thought is not put back to wait for room: a thought nak'd
// with a delay stays unacknowledged on the stage's shared consumer, so an
// agent's thoughts waiting past its bound, as many as the consumer's
// MaxAckPending, would stop it handing any agent another thought (and each
// delivery would judge the thought again). Its other errors are the
// count's and the store's.
func (c *Clerk) queueBounded(ctx context.Context, r Review, log zerolog.Logger) (bool, error) {
	bound := c.cfg.withDefaults().MaxPerAgent
	for try := 1; ; try++ {
		seq, err := lastQueued(ctx, c.js, r.AgentID)
		var n int
		if err == nil {
			n, err = waiting(ctx, c.js, r.AgentID)
		}
		if err != nil {
			return false, fmt.Errorf("count the reviews of agent %s: %w", r.AgentID, err)
		}
		if n >= bound {
			c.bounded.Add(1)
			log.Warn().Int("waiting", n).Int("bound", bound).
				Msg("review not queued: the agent has as many reviews waiting for a person as NOESIS_AGENT_MAX_REVIEWS allows; its verdict is not published and the thought is dead-lettered")
			return false, &BoundError{Agent: r.AgentID, Waiting: n, Bound: bound}
		}
		fresh, err := c.store(ctx, r, jetstream.WithExpectLastSequenceForSubject(seq, agentFilter(r.AgentID)))
		if !overtaken(err) || try == boundTries {
			return fresh, err
		}
	}
}
