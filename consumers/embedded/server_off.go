//go:build noembed

package embedded

import "github.com/rs/zerolog"

// NATS stands for the nats-server a noembed binary does not have.
type NATS struct{}

// ClientURL is empty: there is no server.
func (e *NATS) ClientURL() string { return "" }

// Shutdown does nothing: there is no server.
func (e *NATS) Shutdown() {}

// Start returns ErrNotBuiltIn: this binary was built without the embedded
// server.
func Start(Config, zerolog.Logger) (*NATS, error) { return nil, ErrNotBuiltIn }
