package service

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/config"
)

// A service with everything on (embedded NATS, the in-process simulator,
// metrics, pprof, warm-up, every tier) becomes ready, and once its context
// ends Wait returns with every goroutine it started gone (TestMain checks).
func TestServiceStartsAndStopsEverythingItStarted(t *testing.T) {
	cfg := config.Defaults()
	cfg.NATSListen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Provider = "sim"
	cfg.SimLatencyScale = 0
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.PprofAddr = "127.0.0.1:0"
	cfg.ModalWarmup = true
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := Start(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	if svc.Embedded() == nil || svc.Simulator() == nil || len(svc.Pools()) != 3 {
		t.Errorf("embedded %v, simulator %v, pools %d: want an embedded server, a simulator and 3 pools", svc.Embedded(), svc.Simulator(), len(svc.Pools()))
	}
	res, err := http.Get("http://" + svc.MetricsAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %s, want 200 once Start has returned", res.Status)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- svc.Wait() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Wait did not return within a minute of the context's end")
	}
}

// A Start that fails part-way stops and closes what it had started: here
// the metrics address is taken, after NATS, the router and the pools.
func TestServiceThatFailsToStartLeavesNothingRunning(t *testing.T) {
	cfg := config.Defaults()
	cfg.NATSListen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Provider = "sim"
	cfg.MetricsAddr = "256.0.0.1:1" // no such address
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(context.Background(), cfg, zerolog.Nop()); err == nil {
		t.Fatal("Start with an address it cannot listen on succeeded")
	}
}
