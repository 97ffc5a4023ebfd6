package consumers

import "errors"

// EmbeddedConfig is the embedded NATS server's configuration; its defaults
// match nats.conf, so `nats-server -c nats.conf` runs the same server.
type EmbeddedConfig struct {
	// Listen is host:port; default 127.0.0.1:4222. Port 0 or -1 picks a free port.
	Listen string
	// DataDir holds JetStream's files; default ./data.
	DataDir string
	// MaxPayload bounds one message; default 1 MiB (NATS's default).
	MaxPayload int32
	// ServerName names the server in JetStream; default noesis.
	ServerName string
}

// EmbeddedDefaults are the settings nats.conf also holds.
var EmbeddedDefaults = EmbeddedConfig{Listen: "127.0.0.1:4222", DataDir: "./data", MaxPayload: 1 << 20, ServerName: "noesis"}

// ErrNoEmbedded is StartEmbedded's error in a binary built without the
// embedded server (the noembed build tag, as the container image is).
var ErrNoEmbedded = errors.New("this binary has no embedded NATS server (built with -tags noembed, as the container image is): set NATS_URL to a NATS server with JetStream")
