package service

import (
	"context"
	"strings"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers/shared"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/breaker"
	"github.com/noesis-dev/noesis/router"
	"github.com/noesis-dev/noesis/router/sim"
)

// buildRouter builds the way every model call goes: the simulator when it
// answers, the answer cache (shared through NATS when asked), the router
// with its shared limits, and the metrics that watch it. A Modal warm-up,
// when asked, runs until it is done or ctx ends; sctx bounds the set-up.
func (s *Service) buildRouter(ctx, sctx context.Context, cfg config.Config) error {
	simURL, err := s.simulator(ctx, cfg)
	if err != nil {
		return err
	}
	if err := s.buildCache(sctx, cfg); err != nil {
		return err
	}
	rcfg := cfg.Router(strings.TrimRight(simURL, "/"))
	rcfg.OnBreakerChange = func(target string, from, to breaker.State, cause error) {
		s.log.Warn().Str("target", target).Str("from", string(from)).Str("to", string(to)).AnErr("cause", cause).Msg("model target circuit breaker changed state")
	}
	if cfg.SharedLimits() {
		budgets, _ := cfg.BudgetTable()
		lim, err := shared.NewLimits(sctx, s.js, cfg.Streams().Buckets(), cfg.LimitWindow, budgets, s.log)
		if err != nil {
			return err
		}
		lim.Refresh(sctx)
		rcfg.Quotas = lim
		s.keepers = append(s.keepers, lim.Keep)
	}
	s.metrics = newMetrics(s.cache, cfg.Tribunal().Judges)
	rcfg.Observer = s.metrics
	s.chain, err = router.New(rcfg, s.cache, s.log.With().Str("component", "router").Logger())
	if err != nil {
		return err
	}
	s.cleanup = append(s.cleanup, s.chain.Close)
	if cfg.ModalWarmup {
		s.goOwned(func() {
			if err := s.chain.WarmUp(ctx); err != nil {
				s.log.Warn().Err(err).Msg("warm-up failed; the first thought will wait for the cold start")
			}
		})
	}
	s.logTiers()
	s.metrics.watchBreakers(s.chain)
	return nil
}

// simulator returns the simulator's URL (NOESIS_SIM_URL, or one started in
// this process when it is unset) and warns loudly when it answers.
func (s *Service) simulator(ctx context.Context, cfg config.Config) (string, error) {
	simURL := cfg.SimURL
	if !cfg.UsesSim() {
		return simURL, nil
	}
	if simURL == "" {
		var err error
		if simURL, err = s.startSim(ctx, cfg); err != nil {
			return "", err
		}
	}
	s.simURL = strings.TrimRight(simURL, "/")
	reason := "LLM_PROVIDER=sim"
	if cfg.Provider == "auto" {
		reason = "LLM_PROVIDER=auto and NEBIUS_API_KEY is not set"
	}
	s.log.Warn().Str("sim_url", simURL).Float64("latency_scale", cfg.SimLatencyScale).
		Msgf("USING THE SIMULATOR (%s): every answer is synthetic; set NEBIUS_API_KEY for real models", reason)
	return simURL, nil
}

// startSim runs the simulator in this process on a loopback port, over
// real HTTP, until the service closes (close waits for it to stop).
func (s *Service) startSim(ctx context.Context, cfg config.Config) (string, error) {
	simSrv, err := sim.New(cfg.Sim())
	if err != nil {
		return "", err
	}
	s.simSrv = simSrv
	simCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cleanup = append(s.cleanup, func() { cancel(); simSrv.Wait() })
	return simSrv.Start(simCtx, func(err error) { s.log.Error().Err(err).Msg("simulator stopped") })
}

// buildCache builds the in-process answer cache and, with
// NOESIS_SHARED_CACHE, its level shared by every worker through NATS KV.
func (s *Service) buildCache(ctx context.Context, cfg config.Config) error {
	cc := cfg.Cache()
	if cfg.SharedCache {
		kvc, err := shared.NewAnswers(ctx, s.js, cc.TTL, cfg.Streams().Buckets(), cfg.SharedCacheLease, s.log)
		if err != nil {
			return err
		}
		cc.Shared = kvc
		s.keepers = append(s.keepers, kvc.Keep)
	}
	var err error
	if s.cache, err = router.NewCache(cc); err != nil {
		return err
	}
	s.cleanup = append(s.cleanup, s.cache.Close)
	return nil
}

// logTiers logs each tier's chain of model targets, in the order tried.
func (s *Service) logTiers() {
	for _, t := range pipeline.Tiers {
		var chain []string
		for _, tg := range s.chain.Targets(t) {
			chain = append(chain, tg.Name)
		}
		s.log.Info().Str("tier", string(t)).Strs("chain", chain).Msg("tier routed")
	}
}
