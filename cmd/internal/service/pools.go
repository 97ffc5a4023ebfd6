package service

import (
	"context"
	"fmt"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/breaker"
)

// buildPools builds the tribunal and a pool for each tier this process
// runs, each with its durable consumer, the tribunal's with the review
// queue; sctx bounds the set-up.
func (s *Service) buildPools(sctx context.Context, cfg config.Config) error {
	processors, err := s.processors(cfg)
	if err != nil {
		return err
	}
	for _, t := range cfg.RunTiers() {
		stage, _ := pipeline.StageForTier(t)
		opts := []consumers.PoolOption{consumers.WithObserver(s.metrics)}
		if stage == pipeline.StageTribunal { // the verdicts' stage queues the reviews (consumers/review)
			queue, err := s.reviewQueue(sctx, cfg)
			if err != nil {
				return err
			}
			opts = append(opts, queue)
		}
		pool, err := consumers.NewPool(s.js, cfg.Pool(t), processors[stage].Process, s.log, opts...)
		if err != nil {
			return err
		}
		if _, err := pool.EnsureConsumer(sctx); err != nil {
			return err
		}
		s.metrics.watchPool(stage, pool)
		s.pools[stage] = pool
	}
	return nil
}

// processors are each stage's work: the narrative bridge, the tribunal and
// the analyst, all calling models through the router.
func (s *Service) processors(cfg config.Config) (map[pipeline.Stage]pipeline.Processor, error) {
	tcfg := cfg.Tribunal()
	tcfg.InlineThinking = cfg.VerdictThinking // the thinking is in the transcript either way
	tcfg.OnBreakerChange = func(judge string, from, to breaker.State, cause error) {
		s.log.Warn().Str("judge", judge).Str("from", string(from)).Str("to", string(to)).AnErr("cause", cause).Msg("judge circuit breaker changed state")
	}
	tribunal, err := pipeline.NewTribunal(s.chain, tcfg)
	if err != nil {
		return nil, err
	}
	s.tribunal = tribunal
	logJudges(s.log, tribunal.Judges())
	return map[pipeline.Stage]pipeline.Processor{
		pipeline.StageNarrative: &pipeline.Bridge{Completer: s.chain, Temperature: float32(cfg.NarrativeTemperature), MaxTokens: cfg.NarrativeMaxTokens},
		pipeline.StageTribunal:  tribunal,
		pipeline.StageAnalysis:  &pipeline.Analyst{Completer: s.chain, Temperature: float32(cfg.Temperature), MaxTokens: cfg.MaxTokens},
	}, nil
}

// runPools runs every pool until ctx ends and it has drained.
func (s *Service) runPools(ctx context.Context) {
	for stage, pool := range s.pools {
		s.goOwned(func() {
			if err := pool.Run(ctx); err != nil {
				s.fail(fmt.Errorf("pool %s: %w", stage, err))
			}
		})
	}
}
