package consumers

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Health is the state of what a worker depends on in JetStream.
type Health struct {
	// MissingStreams lists the streams that were gone at the last check
	// (and that the guard then set up again).
	MissingStreams []string `json:"missing_streams,omitempty"`
	// ReaperBacklog counts advisories not yet turned into dead letters;
	// ReaperRedelivered, those tried more than once.
	ReaperBacklog     uint64 `json:"reaper_backlog"`
	ReaperRedelivered uint64 `json:"reaper_redelivered"`
	// ReaperStuck is set when the backlog has not emptied for StuckAfter.
	ReaperStuck bool `json:"reaper_stuck"`
	// Checked is when the state was read.
	Checked time.Time `json:"checked"`
}

// OK reports whether nothing is missing or stuck.
func (h Health) OK() bool { return len(h.MissingStreams) == 0 && !h.ReaperStuck }

// StuckAfter is how long the reaper's backlog may stay above zero before the
// reaper counts as stuck.
const StuckAfter = time.Minute

// Guard watches the streams and the reaper: a stream that was deleted (by
// mistake, or by someone with the rights) is created again, with the pools'
// consumers following (Pool.Run sets its consumer up again), and the state is
// reported for /readyz and `noesis status`. Safe for concurrent use.
type Guard struct {
	js  jetstream.JetStream
	cfg StreamsConfig
	log zerolog.Logger

	mu           sync.Mutex
	health       Health
	backlogSince time.Time
	keepers      []Keeper
}

// A Keeper sets up again, when missing, what a worker keeps in JetStream
// beside the streams (the KV buckets of consumers/shared: the worker
// registry and the shared answer cache are in memory, lost whenever their
// server restarts), and returns the streams it found missing.
type Keeper func(ctx context.Context) (missing []string, err error)

// Keep adds k to the guard's checks.
func (g *Guard) Keep(k Keeper) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.keepers = append(g.keepers, k)
}

// NewGuard returns a guard for the streams of cfg.
func NewGuard(js jetstream.JetStream, cfg StreamsConfig, log zerolog.Logger) *Guard {
	return &Guard{js: js, cfg: cfg, log: log.With().Str("component", "guard").Logger()}
}

// Health returns the last check's state.
func (g *Guard) Health() Health {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.health
}

// Run checks every `every` until ctx ends. It blocks and starts no
// goroutine: its caller owns it (runs it in a goroutine it waits for).
func (g *Guard) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		g.Check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check reads the state once, sets up any missing stream again, and returns
// the state it found.
func (g *Guard) Check(ctx context.Context) Health {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	h := ReadHealth(cctx, g.js)
	// The state is reported before the streams are set up again, so /readyz
	// says they were missing from the moment they are seen missing.
	g.mu.Lock()
	switch {
	case h.ReaperBacklog == 0:
		g.backlogSince = time.Time{}
	case g.backlogSince.IsZero():
		g.backlogSince = h.Checked
	}
	h.ReaperStuck = !g.backlogSince.IsZero() && h.Checked.Sub(g.backlogSince) >= StuckAfter
	g.health = h
	g.mu.Unlock()
	if len(h.MissingStreams) > 0 {
		g.log.Error().Strs("streams", h.MissingStreams).Msg("streams missing (deleted?); setting them up again")
		err := EnsureStreams(cctx, g.js, g.cfg)
		if err == nil {
			err = EnsureAdvisoryStream(cctx, g.js, g.cfg)
		}
		if err != nil {
			g.log.Error().Err(err).Msg("streams not set up again; will retry")
		}
	}
	g.mu.Lock()
	keepers := g.keepers
	g.mu.Unlock()
	for _, k := range keepers {
		missing, err := k(cctx)
		if len(missing) > 0 {
			g.log.Warn().Strs("buckets", missing).Msg("buckets missing (a server restart loses those kept in memory); set up again")
			// A new slice, not h's appended to: g.health shares h's array,
			// which Health's readers read.
			h.MissingStreams = append(slices.Clip(h.MissingStreams), missing...)
			g.mu.Lock()
			g.health.MissingStreams = h.MissingStreams
			g.mu.Unlock()
		}
		if err != nil {
			g.log.Error().Err(err).Msg("buckets not checked or set up again; will retry")
		}
	}
	return h
}

// guardedStreams names every stream the guard sets up again: those
// EnsureStreams sets up, read from StreamConfigs so that a stream added
// there is watched too (NOESIS_DLQ_KEYS once was not), and the advisories.
func guardedStreams() []string {
	var names []string
	for _, sc := range StreamConfigs(StreamsConfig{}) {
		names = append(names, sc.Name)
	}
	return append(names, StreamAdvisories)
}

// ReadHealth reads which streams are missing and the reaper's backlog,
// changing nothing. ReaperStuck is left for a Guard, which watches over time.
func ReadHealth(ctx context.Context, js jetstream.JetStream) Health {
	h := Health{Checked: time.Now()}
	for _, name := range guardedStreams() {
		if _, err := js.Stream(ctx, name); errors.Is(err, jetstream.ErrStreamNotFound) {
			h.MissingStreams = append(h.MissingStreams, name)
		}
	}
	if c, err := js.Consumer(ctx, StreamAdvisories, reaperDurable); err == nil {
		if info, err := c.Info(ctx); err == nil {
			h.ReaperBacklog = info.NumPending + uint64(info.NumAckPending)
			h.ReaperRedelivered = uint64(info.NumRedelivered)
		}
	}
	return h
}
