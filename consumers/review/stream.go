package review

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream is the stream of reviews and decisions.
const Stream = "NOESIS_REVIEWS"

// Subjects. A review is stored under QueuedPrefix+<agent_id>.<id>
// (AgentQueuedSubject), a decision under DecidedPrefix+<agent_id>.<id>,
// republished on PublicPrefix+<agent_id>.
const (
	QueuedPrefix  = "_noesis.review.queued."
	DecidedPrefix = "_noesis.store.reviews."
	PublicPrefix  = "noesis.reviews."
)

// AgentQueuedSubject is where review id of agent is stored: the agent's
// token lets the clerk count the reviews an agent has waiting
// (Config.MaxPerAgent).
func AgentQueuedSubject(agentID, id string) string { return QueuedPrefix + agentID + "." + id }

// QueuedSubject is where earlier versions stored review id, without its
// agent. Such reviews are still read (Desk.Review, the clerk), listed and
// decided; none is stored there any more.
func QueuedSubject(id string) string { return QueuedPrefix + id }

// DecidedSubject is where the decision on review id of agent is stored.
func DecidedSubject(agentID, id string) string { return DecidedPrefix + agentID + "." + id }

// PublicSubject is where an agent hears the decisions on its reviews.
func PublicSubject(agentID string) string { return PublicPrefix + agentID }

// Defaults of Config.
const (
	DefaultMaxAge   = 30 * 24 * time.Hour
	DefaultMaxBytes = int64(512 << 20)
	// DuplicateWindow is how long the stream remembers a message id: a
	// publish retried after a lost acknowledgement within it is told
	// "duplicate"; after it, the subject's one message refuses it.
	DuplicateWindow = 15 * time.Minute
	// DefaultMaxPerAgent is how many reviews one agent may have waiting
	// for a person: 512 of the largest (a 64 KiB thought and its verdict,
	// under 96 KiB) fill 48 MiB, under an eighth of DefaultMaxBytes.
	DefaultMaxPerAgent = 512
)

// Config shapes NOESIS_REVIEWS. The zero value is the default.
type Config struct {
	// Replicas: 1 on one server (the default), 3 on a three-node cluster.
	Replicas int
	// Storage is file (the default) or memory.
	Storage jetstream.StorageType
	// MaxAge is how long a review and its decision are kept, decided or
	// not; default DefaultMaxAge (30 days).
	MaxAge time.Duration
	// MaxBytes bounds the stream; full, it refuses new reviews and
	// decisions. Default DefaultMaxBytes (512 MiB: at the largest thoughts,
	// 64 KiB, some 7,000 reviews; at a typical 4 KiB, over 100,000).
	MaxBytes int64
	// MaxPerAgent bounds the reviews one agent has waiting for a decision:
	// past it, the clerk queues none of the agent's (Clerk.Queue), and the
	// other agents' reviews still find room. Default DefaultMaxPerAgent.
	MaxPerAgent int
}

func (c Config) withDefaults() Config {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxPerAgent <= 0 {
		c.MaxPerAgent = DefaultMaxPerAgent
	}
	return c
}

// StreamConfig is NOESIS_REVIEWS's configuration: one message per subject,
// a second refused (discard new per subject), and the decisions republished
// on noesis.reviews.<agent_id>.
func StreamConfig(cfg Config) jetstream.StreamConfig {
	cfg = cfg.withDefaults()
	return jetstream.StreamConfig{
		Name:        Stream,
		Description: "noesis: verdicts waiting for a person, and their decisions",
		Subjects:    []string{QueuedPrefix + ">", DecidedPrefix + "*.*"},
		Retention:   jetstream.LimitsPolicy, Storage: cfg.Storage, Replicas: cfg.Replicas,
		MaxAge: cfg.MaxAge, MaxBytes: cfg.MaxBytes, Duplicates: DuplicateWindow,
		Discard: jetstream.DiscardNew, DiscardNewPerSubject: true, MaxMsgsPerSubject: 1,
		RePublish: &jetstream.RePublish{Source: DecidedPrefix + "*.*", Destination: PublicPrefix + "{{wildcard(1)}}"},
	}
}

// Ensure creates NOESIS_REVIEWS, or updates it when its configuration
// differs; processes that start together do not fight over it. It tries
// again while JetStream is not there yet, until ctx ends.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	sc := StreamConfig(cfg)
	for {
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.CreateStream(octx, sc)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			_, err = js.UpdateStream(octx, sc)
		}
		cancel()
		if err == nil || !transient(err) {
			if err != nil {
				return fmt.Errorf("stream %s: %w", Stream, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream %s: %w", Stream, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// transient reports whether err may pass if tried again: JetStream not up
// yet, a leader being elected, a create race lost.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		errors.Is(err, jetstream.ErrStreamNameAlreadyInUse), errors.Is(err, jetstream.ErrNoStreamResponse):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code >= 500 || strings.Contains(apiErr.Description, "already in use")
	}
	return strings.Contains(err.Error(), "no responders") || strings.Contains(err.Error(), "timeout")
}
