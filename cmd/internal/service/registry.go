package service

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/shared"
	"github.com/noesis-dev/noesis/pipeline"
)

// registryEvery is how often a worker renews its entry in the registry.
const registryEvery = 10 * time.Second

// announce keeps this worker in the worker registry until ctx ends: its
// id, version, tiers, breakers, paced rates and pools' limits, which
// `noesis status` shows; and, with the shared cache, watches the registry
// for the other workers the cache shares with. sctx bounds the registry's
// set-up; guard sets its bucket up again when lost.
func (s *Service) announce(ctx, sctx context.Context, cfg config.Config, guard *consumers.Guard) error {
	reg, err := shared.NewRegistry(sctx, s.js, cfg.Streams().Buckets(), registryEvery)
	if err != nil {
		return err
	}
	guard.Keep(reg.Keep) // a server restart loses the registry's bucket, kept in memory
	host, _ := os.Hostname()
	me := shared.WorkerInfo{ID: fmt.Sprintf("%s:%d:%s", host, os.Getpid(), uuid.NewString()[:8]), Version: Version, Started: time.Now().UTC()}
	for _, t := range cfg.RunTiers() {
		me.Tiers = append(me.Tiers, string(t))
	}
	// Announced before the pools run (Start), so that the other workers
	// share with this one from its first thought.
	if err := reg.Put(sctx, s.workerInfo(me)); err != nil {
		s.log.Warn().Err(err).Str("bucket", shared.WorkersBucket).Dur("again_in", registryEvery).Msg("this worker could not announce itself; it goes on")
	}
	s.goOwned(func() { reg.Announce(ctx, func() shared.WorkerInfo { return s.workerInfo(me) }) })
	if cfg.SharedCache {
		// The shared answer cache is asked only while another worker is
		// live (router.Cache.SetAlone): alone, it shares with nobody.
		s.goOwned(func() { reg.WatchOthers(ctx, me.ID, s.cache.SetAlone) })
	}
	return nil
}

// workerInfo is me with this moment's breakers, paced rates and limits.
func (s *Service) workerInfo(me shared.WorkerInfo) shared.WorkerInfo {
	wi := me
	if _, ok := s.pools[pipeline.StageTribunal]; ok {
		wi.Breakers = s.tribunal.BreakerStates()
	}
	wi.TargetBreakers = s.chain.BreakerStates()
	wi.Paced = s.chain.PacedRates()
	wi.Limits = map[string]shared.LimitInfo{}
	for st, p := range s.pools {
		l := p.Limit()
		wi.Limits[string(st)] = shared.LimitInfo{Limit: l.Limit, InFlight: l.InFlight, Adaptive: l.Adaptive}
	}
	return wi
}
