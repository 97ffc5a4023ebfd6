package service

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
)

// lagEvery is how often the consumers' lag and the agents' use are read
// into the gauges.
const lagEvery = 5 * time.Second

// startMetrics serves /metrics, /healthz and /readyz on NOESIS_METRICS_ADDR,
// when set, and keeps the lag gauges current until ctx ends.
func (s *Service) startMetrics(ctx context.Context, cfg config.Config, health func() consumers.Health) error {
	if cfg.MetricsAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("NOESIS_METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
	}
	s.serve(ln, metricsHandler(s.metrics, s.nc, &s.ready, health))
	s.metricsAddr = ln.Addr().String()
	var stages []pipeline.Stage
	for st := range s.pools {
		stages = append(stages, st)
	}
	s.goOwned(func() { s.metrics.watchLag(ctx, s.js, stages, cfg.LimitWindow, lagEvery) })
	s.log.Info().Str("addr", s.metricsAddr).Msg("metrics on /metrics, health on /healthz and /readyz")
	return nil
}

// metricsHandler serves /metrics, /healthz and /readyz. /readyz answers
// 200 once ready is set, NATS is connected, no stream is missing and the
// reaper is not stuck (health, when set, says).
func metricsHandler(m *metrics, nc *nats.Conn, ready *atomic.Bool, health func() consumers.Health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case !ready.Load():
			http.Error(w, "starting: streams and consumers not set up yet", http.StatusServiceUnavailable)
		case !nc.IsConnected():
			http.Error(w, "NATS connection is "+nc.Status().String(), http.StatusServiceUnavailable)
		case health != nil && len(health().MissingStreams) > 0:
			http.Error(w, fmt.Sprintf("streams missing, being set up again: %v", health().MissingStreams), http.StatusServiceUnavailable)
		case health != nil && health().ReaperStuck:
			http.Error(w, fmt.Sprintf("reaper stuck: %d advisories waiting for over %s", health().ReaperBacklog, consumers.StuckAfter), http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte("ready\n"))
		}
	})
	return mux
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
	s.serve(ln, mux)
	s.log.Info().Str("addr", ln.Addr().String()).Msg("pprof listening")
	return nil
}

// serve serves h on ln until the service closes; close stops the server
// and waits for its goroutine.
func (s *Service) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln) // http.ErrServerClosed once close stops it
	}()
	s.cleanup = append(s.cleanup, func() { _ = srv.Close(); <-served })
}
