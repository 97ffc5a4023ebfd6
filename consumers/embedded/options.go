//go:build !noembed

package embedded

import (
	"fmt"
	"net"
	"strconv"

	"github.com/nats-io/nats-server/v2/server"
)

// Options turns the config into nats-server options; its zero fields take
// Defaults'. It returns an error for a Listen that is not host:port.
func (c Config) Options() (*server.Options, error) {
	if c.Listen == "" {
		c.Listen = Defaults.Listen
	}
	if c.DataDir == "" {
		c.DataDir = Defaults.DataDir
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = Defaults.MaxPayload
	}
	if c.ServerName == "" {
		c.ServerName = Defaults.ServerName
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
