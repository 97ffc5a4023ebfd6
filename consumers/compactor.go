package consumers

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
)

// Compactor keeps NOESIS_THOUGHTS for thoughts still waiting. The stream
// keeps every thought for its max age (the history `noesis bench shadow`
// reads, the originals of dead letters), and it holds each agent to
// MaxThoughtsPerAgent and every agent together to its max bytes: without
// compaction an agent that published its quota in the morning, all of it
// long processed, would be refused until the evening, and one agent's
// processed flood would keep everyone out for a day. So when an agent holds
// half its quota, or the stream is three quarters full, the Compactor purges
// thoughts every stage has acknowledged (below the lowest ack floor of the
// stage consumers): first the agents that hold the most. The quota then
// counts what waits, and history is kept while there is room for it.
//
// Several workers compact at once without harm: a purge of what is already
// gone removes nothing. Safe for concurrent use.
type Compactor struct {
	js  jetstream.JetStream
	cfg StreamsConfig
	log zerolog.Logger
}

// NewCompactor returns a Compactor of the thoughts stream configured by cfg.
func NewCompactor(js jetstream.JetStream, cfg StreamsConfig, log zerolog.Logger) *Compactor {
	return &Compactor{js: js, cfg: cfg.withDefaults(), log: log.With().Str("component", "compactor").Logger()}
}

// Run compacts every `every` until ctx ends. It blocks and starts no
// goroutine: its caller owns it (runs it in a goroutine it waits for).
func (c *Compactor) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := c.Compact(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn().Err(err).Msg("thoughts not compacted")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Compact purges the acknowledged thoughts of the agents that hold half
// their quota, or of every agent, most held first, while the stream is three
// quarters full. It returns how many thoughts it purged.
func (c *Compactor) Compact(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := c.js.Stream(ctx, StreamThoughts)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(ThoughtsPrefix+"*"))
	if err != nil {
		return 0, err
	}
	floor, ok := c.ackFloor(ctx)
	if !ok || floor <= info.State.FirstSeq {
		return 0, nil // nothing every stage has acknowledged
	}
	full := info.Config.MaxBytes > 0 && info.State.Bytes*4 >= uint64(info.Config.MaxBytes)*3
	type held struct {
		subject string
		n       uint64
	}
	var agents []held
	for subj, n := range info.State.Subjects {
		if full || n*2 >= uint64(c.cfg.MaxThoughtsPerAgent) {
			agents = append(agents, held{subj, n})
		}
	}
	slices.SortFunc(agents, func(a, b held) int { return int(b.n) - int(a.n) })
	var purged uint64
	for _, a := range agents {
		// Purge below floor: only thoughts every stage has acknowledged.
		if err := s.Purge(ctx, jetstream.WithPurgeSubject(a.subject), jetstream.WithPurgeSequence(floor)); err != nil {
			return purged, err
		}
		after, err := s.Info(ctx, jetstream.WithSubjectFilter(a.subject))
		if err != nil {
			return purged, err
		}
		if left := after.State.Subjects[a.subject]; left < a.n {
			purged += a.n - left
			c.log.Info().Str("agent", strings.TrimPrefix(a.subject, ThoughtsPrefix)).Uint64("purged", a.n-left).Uint64("held", left).Msg("acknowledged thoughts compacted")
		}
	}
	return purged, nil
}

// ackFloor is the first sequence some stage has not acknowledged: the
// lowest ack floor of the stage consumers, plus one. It reports false when
// there is no stage consumer.
func (c *Compactor) ackFloor(ctx context.Context) (uint64, bool) {
	var floor uint64
	found := false
	for _, st := range pipeline.Stages {
		cons, err := c.js.Consumer(ctx, StreamThoughts, string(st))
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return 0, false
		}
		ci, err := cons.Info(ctx)
		if err != nil {
			return 0, false
		}
		if f := ci.AckFloor.Stream + 1; !found || f < floor {
			floor, found = f, true
		}
	}
	return floor, found
}
