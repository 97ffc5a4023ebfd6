package embedded

// Config is the embedded NATS server's configuration; its defaults
// match nats.conf, so `nats-server -c nats.conf` runs the same server.
type Config struct {
	// Listen is host:port; default 127.0.0.1:4222. Port 0 or -1 picks a free port.
	Listen string
	// DataDir holds JetStream's files; default ./data.
	DataDir string
	// MaxPayload bounds one message; default 1 MiB (NATS's default).
	MaxPayload int32
	// ServerName names the server in JetStream; default noesis.
	ServerName string
}

// Defaults are the settings nats.conf also holds.
var Defaults = Config{Listen: "127.0.0.1:4222", DataDir: "./data", MaxPayload: 1 << 20, ServerName: "noesis"}
