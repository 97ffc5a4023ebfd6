package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/embedded"
)

// NATSOptions turns the NATS_* credentials and TLS settings (natscli's names)
// into connection options.
func NATSOptions(cfg config.Config, name string) ([]nats.Option, error) {
	opts := []nats.Option{nats.Name(name)}
	switch {
	case cfg.NATSCreds != "":
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	case cfg.NATSNKey != "":
		o, err := nats.NkeyOptionFromSeed(cfg.NATSNKey)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY %s: %w", cfg.NATSNKey, err)
		}
		opts = append(opts, o)
	case cfg.NATSUser != "":
		opts = append(opts, nats.UserInfo(cfg.NATSUser, cfg.NATSPassword))
	case cfg.NATSToken != "":
		opts = append(opts, nats.Token(cfg.NATSToken))
	}
	if cfg.NATSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.NATSCA))
	}
	if cfg.NATSCert != "" || cfg.NATSKey != "" {
		opts = append(opts, nats.ClientCert(cfg.NATSCert, cfg.NATSKey))
	}
	return opts, nil
}

// workerOptions are the options of a long-running worker connection.
func workerOptions(cfg config.Config, onDisconnect nats.ConnErrHandler, onReconnect nats.ConnHandler) ([]nats.Option, error) {
	opts, err := NATSOptions(cfg, "noesis")
	if err != nil {
		return nil, err
	}
	return append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(onDisconnect), nats.ReconnectHandler(onReconnect)), nil
}

// Connect connects a command to NATS_URL, or to the embedded server's
// address when NATS_URL is unset.
func Connect(cfg config.Config, name string, extra ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	url := cfg.NATSURL
	if url == "" {
		url = "nats://" + cfg.NATSListen
	}
	opts, err := NATSOptions(cfg, name)
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w%s", RedactURL(url), err, connectHint(cfg, err))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// connect starts the embedded server when NATS_URL is unset, then connects
// the worker to NATS with JetStream; close drains the connection and stops
// the server.
func (s *Service) connect(cfg config.Config) error {
	s.natsURL = cfg.NATSURL
	if s.natsURL == "" {
		if err := listenFree(cfg.NATSListen, cfg.DataDir); err != nil {
			return err
		}
		var err error
		s.embedded, err = embedded.Start(cfg.Embedded(), s.log)
		if err != nil {
			return err
		}
		s.cleanup = append(s.cleanup, s.embedded.Shutdown)
		s.natsURL = s.embedded.ClientURL()
		s.log.Info().Str("url", s.natsURL).Str("data_dir", cfg.DataDir).Msg("embedded NATS server with JetStream started")
	}
	log := s.log
	opts, err := workerOptions(cfg,
		func(_ *nats.Conn, err error) { log.Warn().Err(err).Msg("NATS disconnected") },
		func(nc *nats.Conn) { log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("NATS reconnected") })
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
		ev := log.Error().Err(err)
		if sub != nil {
			ev = ev.Str("subject", sub.Subject)
		}
		ev.Msg("NATS reported an error")
	}))
	if err != nil {
		return err
	}
	s.nc, err = nats.Connect(s.natsURL, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", RedactURL(s.natsURL), err)
	}
	s.cleanup = append(s.cleanup, func() { _ = s.nc.Drain(); s.nc.Close() })
	if largest := int64(cfg.MaxThoughtBytes) + consumers.ThoughtHeaderAllowance; largest > s.nc.MaxPayload() {
		s.log.Warn().Int("max_thought_bytes", cfg.MaxThoughtBytes).Int64("server_max_payload", s.nc.MaxPayload()).
			Msg("NOESIS_MAX_THOUGHT_BYTES (with its headers) is over the NATS server's max_payload: the server refuses a thought past max_payload at publish, before noesis sees it; raise the server's max_payload or lower NOESIS_MAX_THOUGHT_BYTES")
	}
	s.js, err = jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}

// ensureStreams creates or updates the streams, the advisories' included.
func ensureStreams(ctx context.Context, js jetstream.JetStream, cfg config.Config) error {
	if err := consumers.EnsureStreams(ctx, js, cfg.Streams()); err != nil {
		return err
	}
	return consumers.EnsureAdvisoryStream(ctx, js, cfg.Streams())
}

// RedactURL hides the credentials of a nats://user:pass@host URL.
func RedactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "REDACTED@" + u[i+1:]
		}
	}
	return u
}

// connectHint is what to do about a command's failed connection, or "".
func connectHint(cfg config.Config, err error) string {
	switch {
	case errors.Is(err, nats.ErrNoServers) && cfg.NATSURL == "":
		return " (is noesis serve running, for example with make run? Else set NATS_URL)"
	case errors.Is(err, nats.ErrNoServers):
		return " (is the server running, and NATS_URL right?)"
	case errors.Is(err, nats.ErrAuthorization) && cfg.NATSUser == "" && cfg.NATSToken == "" && cfg.NATSCreds == "" && cfg.NATSNKey == "":
		return ": this server wants a login: set NATS_USER and NATS_PASSWORD, NATS_NKEY (an agent's seed file) or NATS_CREDS (docs/security.md)"
	case errors.Is(err, nats.ErrAuthorization):
		return ": the server refused this login (NATS_USER and NATS_PASSWORD, NATS_NKEY, NATS_CREDS or NATS_TOKEN): check it, and that the server was reloaded after noesis agent add"
	}
	return ""
}

// listenFree returns an error that says what to do when addr, where the
// embedded server would listen, is taken: most often by a noesis serve (make
// run) already running in another terminal. Checked before the server
// starts, because nats-server opens its JetStream store in dataDir before it
// listens: it would recover the other server's streams from the very files
// that server is writing, then wait 15 s for a listener it never had.
func listenFree(addr, dataDir string) error {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("NOESIS_NATS_LISTEN %s is taken: is another noesis serve (make run) or a nats-server running? "+
			"Use it (NATS_URL=nats://%s), stop it, or give this one NOESIS_NATS_LISTEN and NOESIS_DATA_DIR of its own (never the same NOESIS_DATA_DIR, now %s, as a server running)",
			addr, addr, dataDir)
	}
	if err == nil {
		ln.Close()
	}
	return nil // an address that is no address: the embedded server's options say so
}
