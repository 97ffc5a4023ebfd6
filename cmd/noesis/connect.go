package main

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/noesis-dev/noesis/config"
)

// natsOptions turns the NATS_* credentials and TLS settings (natscli's names)
// into connection options.
func natsOptions(cfg config.Config, name string) ([]nats.Option, error) {
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

// serviceOptions are the options of a long-running worker connection.
func serviceOptions(cfg config.Config, onDisconnect nats.ConnErrHandler, onReconnect nats.ConnHandler) ([]nats.Option, error) {
	opts, err := natsOptions(cfg, "noesis")
	if err != nil {
		return nil, err
	}
	return append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(onDisconnect), nats.ReconnectHandler(onReconnect)), nil
}
