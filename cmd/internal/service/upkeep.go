package service

import (
	"context"
	"time"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
)

// upkeepEvery is how often the guard and the compactor look at the streams.
const upkeepEvery = 5 * time.Second

// startUpkeep checks the streams once (within sctx), then keeps them until
// ctx ends: the guard sets up a stream or a component's bucket that went
// missing (s.keepers; a server restart loses the buckets kept in memory),
// the compactor trims what is done with. The guard's health feeds /readyz.
func (s *Service) startUpkeep(ctx, sctx context.Context, cfg config.Config) *consumers.Guard {
	guard := consumers.NewGuard(s.js, cfg.Streams(), s.log)
	for _, k := range s.keepers {
		guard.Keep(k)
	}
	guard.Check(sctx)
	s.goOwned(func() { guard.Run(ctx, upkeepEvery) })
	compactor := consumers.NewCompactor(s.js, cfg.Streams(), s.log)
	s.goOwned(func() { compactor.Run(ctx, upkeepEvery) })
	return guard
}

// runReaper dead-letters, until ctx ends, the thoughts JetStream gave up on.
func (s *Service) runReaper(ctx context.Context) {
	reaper := consumers.NewReaper(s.js, s.log)
	s.goOwned(func() {
		if err := reaper.Run(ctx); err != nil {
			s.fail(err)
		}
	})
}
