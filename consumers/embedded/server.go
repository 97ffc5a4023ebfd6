//go:build !noembed

package embedded

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// NATS is a nats-server running in this process.
type NATS struct{ srv *server.Server }

// ClientURL is the URL clients connect to.
func (e *NATS) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits until it has.
func (e *NATS) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// Start starts a JetStream-enabled nats-server in this process and waits
// until it takes connections. Call Shutdown to stop it: it waits for the
// server's goroutines.
func Start(cfg Config, log zerolog.Logger) (*NATS, error) {
	opts, err := cfg.Options()
	if err != nil {
		return nil, err
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	s.SetLoggerV2(serverLogger{log.With().Str("component", "nats-server").Logger()}, false, false, false)
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready to take connections on %s within 15 s", cfg.Listen)
	}
	return &NATS{srv: s}, nil
}
