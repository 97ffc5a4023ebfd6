package service

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/pipeline"
)

// ReviewConfig is NOESIS_REVIEWS's shape for a worker: the replicas and
// storage of the other streams, the bounds of package review's defaults.
func ReviewConfig(cfg config.Config) review.Config {
	sc := cfg.Streams()
	return review.Config{Replicas: sc.Replicas, Storage: sc.Storage}
}

// startReviews runs the review feeder in a worker that runs the tribunal
// (the verdicts' stage) and, with metrics on, follows the queue for the
// gauges noesis_reviews_waiting and noesis_reviews_oldest_waiting_seconds
// (every worker with metrics reports the same queue: take the max). Both
// stop when ctx ends; the service waits for them.
func (s *Service) startReviews(ctx context.Context, cfg config.Config) {
	if _, ok := s.pools[pipeline.StageTribunal]; ok {
		feeder := review.NewFeeder(s.js, ReviewConfig(cfg), s.log)
		s.goOwned(func() {
			if err := feeder.Run(ctx); err != nil {
				s.fail(err)
			}
		})
	}
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
