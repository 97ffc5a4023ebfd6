// Package service wires noesis's components into one running worker: the
// NATS connection (or an embedded server), the streams, the router with its
// cache and limits, the tribunal, a pool per tier, metrics, health and the
// worker registry. cmd/noesis's serve, and the pipeline bench, start it.
package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
)

// Version is the build's version, announced in the worker registry and
// the traces; cmd/noesis sets it from its -ldflags version.
var Version = "dev"

// The consumers package keeps, in NATS, what the router asks of these interfaces.
var (
	_ router.Limiter = (*consumers.KVLimits)(nil)
	_ router.Shared  = (*consumers.KVCache)(nil)
)

// Service is one running noesis process: its connections and pools.
type Service struct {
	log      zerolog.Logger
	embedded *consumers.Embedded
	nc       *nats.Conn
	chain    *router.Chain
	cache    *router.Cache
	simSrv   *sim.Server
	simURL   string // the simulator's base URL, when the provider is the simulator
	pools    map[pipeline.Stage]*consumers.Pool
	natsURL  string
	metrics  *metrics
	// metricsAddr is where /metrics listens, when it does.
	metricsAddr string
	ready       atomic.Bool

	done    chan struct{}
	errMu   sync.Mutex
	err     error
	cleanup []func()
}

// Start wires every component from cfg and starts the pools. It runs
// until ctx ends; Wait then returns once everything has drained.
func Start(ctx context.Context, cfg config.Config, log zerolog.Logger) (_ *Service, err error) {
	if err := cfg.CheckServe(); err != nil {
		return nil, err
	}
	s := &Service{log: log, pools: map[pipeline.Stage]*consumers.Pool{}, done: make(chan struct{})}
	for old, now := range cfg.Renamed() {
		log.Warn().Str("variable", old).Str("now", now).Msg("a renamed setting: read this time; set it under its new name")
	}
	if budget := cfg.ApplyMemoryBudget(); budget > 0 {
		log.Info().Uint64("bytes", budget).Msg("memory budget: Go's soft memory limit, and the pools' limits stop growing near it")
	}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if cfg.OTLPEndpoint != "" {
		shutdown, err := startTracing(ctx)
		if err != nil {
			return nil, err
		}
		s.cleanup = append(s.cleanup, shutdown)
		log.Info().Str("endpoint", cfg.OTLPEndpoint).Msg("exporting OpenTelemetry spans")
	}
	if cfg.PprofAddr != "" {
		if err := s.startPprof(cfg.PprofAddr); err != nil {
			return nil, err
		}
	}
	s.natsURL = cfg.NATSURL
	if s.natsURL == "" {
		s.embedded, err = consumers.StartEmbedded(cfg.Embedded(), log)
		if err != nil {
			return nil, err
		}
		s.cleanup = append(s.cleanup, s.embedded.Shutdown)
		s.natsURL = s.embedded.ClientURL()
		log.Info().Str("url", s.natsURL).Str("data_dir", cfg.DataDir).Msg("embedded NATS server with JetStream started")
	}
	opts, err := workerOptions(cfg,
		func(_ *nats.Conn, err error) { log.Warn().Err(err).Msg("NATS disconnected") },
		func(nc *nats.Conn) { log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("NATS reconnected") })
	if err != nil {
		return nil, err
	}
	s.nc, err = nats.Connect(s.natsURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", RedactURL(s.natsURL), err)
	}
	s.cleanup = append(s.cleanup, func() { _ = s.nc.Drain(); s.nc.Close() })
	js, err := jetstream.New(s.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute) // a cluster may still be electing its leaders
	defer cancel()
	if err := consumers.EnsureStreams(sctx, js, cfg.Streams()); err != nil {
		return nil, err
	}
	if err := consumers.EnsureAdvisoryStream(sctx, js, cfg.Streams()); err != nil {
		return nil, err
	}

	simURL := cfg.SimURL
	provider := cfg.ResolvedProvider()
	if cfg.UsesSim() && simURL == "" {
		simURL, err = s.startSim(ctx, cfg)
		if err != nil {
			return nil, err
		}
	}
	if cfg.UsesSim() {
		s.simURL = strings.TrimRight(simURL, "/")
		reason := "LLM_PROVIDER=sim"
		if cfg.Provider == "auto" {
			reason = "LLM_PROVIDER=auto and NEBIUS_API_KEY is not set"
		}
		log.Warn().Str("sim_url", simURL).Float64("latency_scale", cfg.SimLatencyScale).
			Msgf("USING THE SIMULATOR (%s): every answer is synthetic; set NEBIUS_API_KEY for real models", reason)
	}
	s.cache, err = router.NewCache(cfg.Cache())
	if err != nil {
		return nil, err
	}
	s.cleanup = append(s.cleanup, s.cache.Close)
	if cfg.SharedCache {
		kvc, err := consumers.NewKVCache(sctx, js, cfg.Cache().TTL, cfg.Streams(), cfg.SharedCacheLease, log)
		if err != nil {
			return nil, err
		}
		s.cache.SetShared(kvc)
	}
	rcfg := cfg.Router(strings.TrimRight(simURL, "/"))
	rcfg.OnBreakerChange = func(target string, from, to pipeline.BreakerState, cause error) {
		log.Warn().Str("target", target).Str("from", string(from)).Str("to", string(to)).AnErr("cause", cause).Msg("model target circuit breaker changed state")
	}
	s.chain, err = router.New(rcfg, s.cache, log.With().Str("component", "router").Logger())
	if err != nil {
		return nil, err
	}
	if cfg.SharedLimits() {
		budgets, _ := cfg.BudgetTable()
		lim, err := consumers.NewKVLimits(sctx, js, cfg.Streams(), cfg.LimitWindow, budgets, log)
		if err != nil {
			return nil, err
		}
		lim.Refresh(sctx)
		s.chain.SetLimiter(lim)
	}
	if cfg.ModalWarmup {
		go func() {
			if err := s.chain.WarmUp(ctx); err != nil {
				log.Warn().Err(err).Msg("warm-up failed; the first thought will wait for the cold start")
			}
		}()
	}
	s.cleanup = append(s.cleanup, s.chain.Close)
	for _, t := range pipeline.Tiers {
		var chain []string
		for _, tg := range s.chain.Targets(t) {
			chain = append(chain, tg.Name)
		}
		log.Info().Str("tier", string(t)).Strs("chain", chain).Msg("tier routed")
	}

	tcfg := cfg.Tribunal()
	tcfg.InlineThinking = cfg.VerdictThinking // the thinking is in the transcript either way
	tcfg.OnBreakerChange = func(judge string, from, to pipeline.BreakerState, cause error) {
		log.Warn().Str("judge", judge).Str("from", string(from)).Str("to", string(to)).AnErr("cause", cause).Msg("judge circuit breaker changed state")
	}
	tribunal, err := pipeline.NewTribunal(s.chain, tcfg)
	if err != nil {
		return nil, err
	}
	logJudges(log, tribunal.Judges())
	processors := map[pipeline.Stage]pipeline.Processor{
		pipeline.StageNarrative: &pipeline.Bridge{Completer: s.chain, Temperature: float32(cfg.NarrativeTemperature), MaxTokens: cfg.NarrativeMaxTokens},
		pipeline.StageTribunal:  tribunal,
		pipeline.StageAnalysis:  &pipeline.Analyst{Completer: s.chain, Temperature: float32(cfg.Temperature), MaxTokens: cfg.MaxTokens},
	}
	s.metrics = newMetrics(s.cache, cfg.Tribunal().Judges)
	s.chain.SetObserver(s.metrics)
	s.metrics.watchBreakers(s.chain)
	var wg sync.WaitGroup
	for _, t := range cfg.RunTiers() {
		stage, _ := pipeline.StageForTier(t)
		pool, err := consumers.NewPool(js, cfg.Pool(t), processors[stage].Process, log)
		if err != nil {
			return nil, err
		}
		if _, err := pool.EnsureConsumer(sctx); err != nil {
			return nil, err
		}
		pool.SetObserver(s.metrics)
		s.metrics.watchPool(stage, pool)
		s.pools[stage] = pool
	}
	guard := consumers.NewGuard(js, cfg.Streams(), log)
	guard.Check(sctx)
	guardCtx, stopGuard := context.WithCancel(ctx)
	s.cleanup = append(s.cleanup, stopGuard)
	go guard.Run(guardCtx, 5*time.Second)
	compactor := consumers.NewCompactor(js, cfg.Streams(), log)
	go compactor.Run(guardCtx, 5*time.Second)
	if cfg.MetricsAddr != "" {
		srv, addr, err := serveMetrics(cfg.MetricsAddr, s.metrics, s.nc, &s.ready, guard.Health)
		if err != nil {
			return nil, err
		}
		s.metricsAddr = addr
		s.cleanup = append(s.cleanup, func() { _ = srv.Close() })
		var stages []pipeline.Stage
		for st := range s.pools {
			stages = append(stages, st)
		}
		lagCtx, stopLag := context.WithCancel(ctx)
		s.cleanup = append(s.cleanup, stopLag)
		go s.metrics.watchLag(lagCtx, js, stages, cfg.LimitWindow, 5*time.Second)
		log.Info().Str("addr", addr).Msg("metrics on /metrics, health on /healthz and /readyz")
	}
	s.startReviews(ctx, js, cfg, &wg) // the human review queue (consumers/review)
	reaper := consumers.NewReaper(js, log)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := reaper.Run(ctx); err != nil {
			s.fail(err)
		}
	}()
	for stage, pool := range s.pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pool.Run(ctx); err != nil {
				s.fail(fmt.Errorf("pool %s: %w", stage, err))
			}
		}()
	}
	reg, err := consumers.NewRegistry(sctx, js, cfg.Streams(), 10*time.Second)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	me := consumers.WorkerInfo{ID: fmt.Sprintf("%s:%d:%s", host, os.Getpid(), uuid.NewString()[:8]), Version: Version, Started: time.Now().UTC()}
	for _, t := range cfg.RunTiers() {
		me.Tiers = append(me.Tiers, string(t))
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		reg.Announce(ctx, func() consumers.WorkerInfo {
			wi := me
			if _, ok := s.pools[pipeline.StageTribunal]; ok {
				wi.Breakers = tribunal.BreakerStates()
			}
			wi.TargetBreakers = s.chain.BreakerStates()
			wi.Paced = s.chain.PacedRates()
			wi.Limits = map[string]consumers.LimitInfo{}
			for st, p := range s.pools {
				l := p.Limit()
				wi.Limits[string(st)] = consumers.LimitInfo{Limit: l.Limit, InFlight: l.InFlight, Adaptive: l.Adaptive}
			}
			return wi
		})
	}()
	s.ready.Store(true)
	running := log.Info().Strs("tiers", cfg.Tiers).Str("provider", provider)
	if s.metricsAddr != "" { // the address taken, when NOESIS_METRICS_ADDR asked for port 0
		running = running.Str("metrics_addr", s.metricsAddr)
	}
	running.Msg("noesis is running; publish thoughts on noesis.thoughts.<agent_id>")
	go func() {
		wg.Wait()
		s.close()
		log.Info().Msg("noesis stopped")
		close(s.done)
	}()
	return s, nil
}

// startSim runs the simulator in this process on a loopback port, over real HTTP.
func (s *Service) startSim(ctx context.Context, cfg config.Config) (string, error) {
	s.simSrv = sim.New(cfg.Sim())
	simCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cleanup = append(s.cleanup, cancel)
	return s.simSrv.Start(simCtx, func(err error) { s.log.Error().Err(err).Msg("simulator stopped") })
}

// startPprof serves net/http/pprof on addr until the service closes.
func (s *Service) startPprof(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("NOESIS_PPROF_ADDR %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.cleanup = append(s.cleanup, func() { _ = srv.Close() })
	s.log.Info().Str("addr", ln.Addr().String()).Msg("pprof listening")
	return nil
}

func (s *Service) fail(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	s.err = errors.Join(s.err, err)
	s.log.Error().Err(err).Msg("component failed")
}

// Wait blocks until the service has stopped and returns what failed, if anything.
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

// RedactURL hides the credentials of a nats://user:pass@host URL.
func RedactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "REDACTED@" + u[i+1:]
		}
	}
	return u
}

// Pool returns the pool of a stage this process runs, or nil.
func (s *Service) Pool(stage pipeline.Stage) *consumers.Pool { return s.pools[stage] }

// Pools returns the pools this process runs, by stage.
func (s *Service) Pools() map[pipeline.Stage]*consumers.Pool { return s.pools }

// Chain returns the router every model call goes through.
func (s *Service) Chain() *router.Chain { return s.chain }

// Embedded returns the embedded NATS server, when NATS_URL was unset.
func (s *Service) Embedded() *consumers.Embedded { return s.embedded }

// NATSURL returns the NATS server the service connected to.
func (s *Service) NATSURL() string { return s.natsURL }

// Simulator returns the in-process simulator, when the service started one.
func (s *Service) Simulator() *sim.Server { return s.simSrv }

// MetricsAddr returns where /metrics listens, when it does.
func (s *Service) MetricsAddr() string { return s.metricsAddr }

// Cache returns the answer cache in front of the router's backends.
func (s *Service) Cache() *router.Cache { return s.cache }
