//go:build !noembed

package consumers

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// Embedded is a nats-server running in this process.
type Embedded struct{ srv *server.Server }

// ClientURL is the URL clients connect to.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits until it has.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// Options turns the config into nats-server options.
func (c EmbeddedConfig) Options() (*server.Options, error) {
	if c.Listen == "" {
		c.Listen = EmbeddedDefaults.Listen
	}
	if c.DataDir == "" {
		c.DataDir = EmbeddedDefaults.DataDir
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = EmbeddedDefaults.MaxPayload
	}
	if c.ServerName == "" {
		c.ServerName = EmbeddedDefaults.ServerName
	}
	host, portStr, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return nil, fmt.Errorf("NOESIS_NATS_LISTEN %q: want host:port: %w", c.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < -1 || port > 65535 {
		return nil, fmt.Errorf("NOESIS_NATS_LISTEN %q: port must be a number from 0 to 65535", c.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return &server.Options{
		ServerName: c.ServerName, Host: host, Port: port, JetStream: true, StoreDir: c.DataDir,
		MaxPayload: c.MaxPayload, NoSigs: true,
	}, nil
}

// StartEmbedded starts a JetStream-enabled nats-server in this process and
// waits until it takes connections. Call Shutdown to stop it.
func StartEmbedded(cfg EmbeddedConfig, log zerolog.Logger) (*Embedded, error) {
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
	return &Embedded{srv: s}, nil
}

// serverLogger sends nats-server's log to zerolog.
type serverLogger struct{ log zerolog.Logger }

func (l serverLogger) Noticef(f string, v ...any) { l.log.Debug().Msgf(f, v...) }
func (l serverLogger) Warnf(f string, v ...any)   { l.log.Warn().Msgf(f, v...) }
func (l serverLogger) Fatalf(f string, v ...any)  { l.log.Error().Msgf(f, v...) }
func (l serverLogger) Errorf(f string, v ...any)  { l.log.Error().Msgf(f, v...) }
func (l serverLogger) Debugf(f string, v ...any)  { l.log.Trace().Msgf(f, v...) }
func (l serverLogger) Tracef(f string, v ...any)  { l.log.Trace().Msgf(f, v...) }
