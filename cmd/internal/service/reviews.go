package service

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/review"
)

// ReviewConfig is NOESIS_REVIEWS's shape for a worker: the replicas and
// storage of the other streams, the bound per agent of
// NOESIS_AGENT_MAX_REVIEWS, the other bounds of package review's defaults.
func ReviewConfig(cfg config.Config) review.Config {
	sc := cfg.Streams()
	return review.Config{Replicas: sc.Replicas, Storage: sc.Storage, MaxPerAgent: cfg.AgentMaxReviews}
}

// reviewQueue sets up the human review queue for the tribunal's pool:
// NOESIS_REVIEWS ensured, the consumer an earlier version's review feeder
// left on NOESIS_OUTPUTS deleted, and the clerk the pool queues each review
// through (consumers.WithReviews). sctx bounds the set-up.
func (s *Service) reviewQueue(sctx context.Context, cfg config.Config) (consumers.PoolOption, error) {
	rcfg := ReviewConfig(cfg)
	if err := review.Ensure(sctx, s.js, rcfg); err != nil {
		return nil, err
	}
	if err := review.DropFeeder(sctx, s.js); err != nil {
		return nil, err
	}
	return consumers.WithReviews(review.NewClerk(s.js, rcfg, s.log)), nil
}

// followReviews, with metrics on, follows the review queue for the gauges
// noesis_reviews_waiting and noesis_reviews_oldest_waiting_seconds (every
// worker with metrics reports the same queue: take the max). It stops when
// ctx ends; the service waits for it.
func (s *Service) followReviews(ctx context.Context, cfg config.Config) {
	if cfg.MetricsAddr == "" || s.metrics == nil {
		return
	}
	x := review.NewIndex(s.js)
	s.goOwned(func() {
		if err := x.Run(ctx); err != nil {
			s.log.Warn().Err(err).Msg("review queue not followed; its gauges stay at 0")
		}
	})
	s.metrics.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "noesis_reviews_waiting", Help: "Verdicts waiting in NOESIS_REVIEWS for a person's decision."},
			func() float64 { n, _ := x.Waiting(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "noesis_reviews_oldest_waiting_seconds", Help: "How long the oldest review waiting for a decision has waited; 0 when none waits."},
			func() float64 {
				if _, oldest := x.Waiting(); !oldest.IsZero() {
					return time.Since(oldest).Seconds()
				}
				return 0
			}))
}
