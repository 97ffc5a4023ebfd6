package service

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/embedded"
	"github.com/noesis-dev/noesis/consumers/shared"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
)

// Version is the build's version, announced in the worker registry and
// the traces; cmd/noesis sets it from its -ldflags version.
var Version = "dev"

// The consumers/shared package keeps, in NATS, what the router asks of these interfaces.
var (
	_ router.Quotas = (*shared.Limits)(nil)
	_ router.Shared = (*shared.Answers)(nil)
)

// Service is one running noesis process: its connections and pools. Its
// accessors are safe for concurrent use once Start has returned.
type Service struct {
	log      zerolog.Logger
	embedded *embedded.NATS
	nc       *nats.Conn
	js       jetstream.JetStream
	chain    *router.Router
	cache    *router.Cache
	tribunal *pipeline.Tribunal
	simSrv   *sim.Server
	simURL   string // the simulator's base URL, when the provider is the simulator
	pools    map[pipeline.Stage]*consumers.Pool
	// keepers set up again the KV buckets the components use, when lost
	// (the guard calls them: startUpkeep).
	keepers []consumers.Keeper
	natsURL string
	metrics *metrics
	// metricsAddr is where /metrics listens, when it does.
	metricsAddr string
	ready       atomic.Bool

	// wg owns every goroutine Start starts; stop ends them (the context
	// they run under is Start's, so its end ends them too).
	wg   sync.WaitGroup
	stop context.CancelFunc

	done    chan struct{}
	errMu   sync.Mutex
	err     error
	cleanup []func()
}

// Start wires every component from cfg and starts the pools. It runs
// until ctx ends; Wait then returns once everything has drained. When it
// fails, what it had started is stopped and closed before it returns.
func Start(ctx context.Context, cfg config.Config, log zerolog.Logger) (_ *Service, err error) {
	if err := cfg.CheckServe(); err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	s := &Service{log: log, pools: map[pipeline.Stage]*consumers.Pool{}, done: make(chan struct{}), stop: stop}
	defer func() {
		if err != nil {
			s.shutdown()
		}
	}()
	logSettings(log, cfg)
	if err := s.startDiagnostics(ctx, cfg); err != nil {
		return nil, err
	}
	if err := s.connect(cfg); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute) // a cluster may still be electing its leaders
	defer cancel()
	if err := ensureStreams(sctx, s.js, cfg); err != nil {
		return nil, err
	}
	if err := s.buildRouter(runCtx, sctx, cfg); err != nil {
		return nil, err
	}
	if err := s.buildPools(sctx, cfg); err != nil {
		return nil, err
	}
	guard := s.startUpkeep(runCtx, sctx, cfg)
	if err := s.startMetrics(runCtx, cfg, guard.Health); err != nil {
		return nil, err
	}
	s.followReviews(runCtx, cfg) // the human review queue's gauges (consumers/review)
	s.runReaper(runCtx)
	if err := s.announce(runCtx, sctx, cfg, guard); err != nil {
		return nil, err
	}
	s.runPools(runCtx)
	s.ready.Store(true)
	s.logRunning(cfg)
	go s.closeWhenDrained()
	return s, nil
}

// logSettings warns of renamed settings and of a consumer one agent's held
// thoughts could fill (config.QuotaHoldRisks), and says the memory budget
// applied.
func logSettings(log zerolog.Logger, cfg config.Config) {
	for old, now := range cfg.Renamed() {
		log.Warn().Str("variable", old).Str("now", now).Msg("a renamed setting: read this time; set it under its new name")
	}
	for _, risk := range cfg.QuotaHoldRisks() {
		log.Warn().Msg(risk)
	}
	if budget := cfg.ApplyMemoryBudget(); budget > 0 {
		log.Info().Uint64("bytes", budget).Msg("memory budget: Go's soft memory limit, and the pools' limits stop growing near it")
	}
}

// startDiagnostics starts the OpenTelemetry exporter and pprof, when asked.
func (s *Service) startDiagnostics(ctx context.Context, cfg config.Config) error {
	if cfg.OTLPEndpoint != "" {
		shutdown, err := startTracing(ctx)
		if err != nil {
			return err
		}
		s.cleanup = append(s.cleanup, shutdown)
		s.log.Info().Str("endpoint", cfg.OTLPEndpoint).Msg("exporting OpenTelemetry spans")
	}
	if cfg.PprofAddr != "" {
		return s.startPprof(cfg.PprofAddr)
	}
	return nil
}

// logRunning says the service is up, with the address /metrics took.
func (s *Service) logRunning(cfg config.Config) {
	running := s.log.Info().Strs("tiers", cfg.Tiers).Str("provider", cfg.ResolvedProvider())
	if s.metricsAddr != "" { // the address taken, when NOESIS_METRICS_ADDR asked for port 0
		running = running.Str("metrics_addr", s.metricsAddr)
	}
	running.Msg("noesis is running; publish thoughts on noesis.thoughts.<agent_id>")
}

// goOwned runs fn in a goroutine the service waits for before it closes.
func (s *Service) goOwned(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// closeWhenDrained waits for every owned goroutine (the pools drain when
// Start's context ends), closes everything and releases Wait.
func (s *Service) closeWhenDrained() {
	s.wg.Wait()
	s.stop()
	s.close()
	s.log.Info().Msg("noesis stopped")
	close(s.done)
}

// shutdown stops what a failed Start had started, waits for it and closes.
func (s *Service) shutdown() {
	s.stop()
	s.wg.Wait()
	s.close()
}

func (s *Service) fail(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	s.err = errors.Join(s.err, err)
	s.log.Error().Err(err).Msg("component failed")
}

// Wait blocks until the service has stopped (every goroutine it started
// has returned and everything is closed) and returns what failed, if anything.
func (s *Service) Wait() error {
	<-s.done
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// close releases everything in reverse order of creation.
func (s *Service) close() {
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
	s.cleanup = nil
}

// Pool returns the pool of a stage this process runs, or nil.
func (s *Service) Pool(stage pipeline.Stage) *consumers.Pool { return s.pools[stage] }

// Pools returns the pools this process runs, by stage.
func (s *Service) Pools() map[pipeline.Stage]*consumers.Pool { return s.pools }

// Chain returns the router every model call goes through.
func (s *Service) Chain() *router.Router { return s.chain }

// Embedded returns the embedded NATS server, when NATS_URL was unset.
func (s *Service) Embedded() *embedded.NATS { return s.embedded }

// NATSURL returns the NATS server the service connected to.
func (s *Service) NATSURL() string { return s.natsURL }

// Simulator returns the in-process simulator, when the service started one.
func (s *Service) Simulator() *sim.Server { return s.simSrv }

// MetricsAddr returns where /metrics listens, when it does.
func (s *Service) MetricsAddr() string { return s.metricsAddr }

// Cache returns the answer cache in front of the router's backends.
func (s *Service) Cache() *router.Cache { return s.cache }
