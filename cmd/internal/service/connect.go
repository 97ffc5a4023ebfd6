package service

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/config"
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
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", RedactURL(url), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
