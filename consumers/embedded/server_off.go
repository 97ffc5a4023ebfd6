//go:build noembed

package embedded

import "github.com/rs/zerolog"

// Server stands for the nats-server a noembed binary does not have.
type Server struct{}

// ClientURL is empty: there is no server.
func (e *Server) ClientURL() string { return "" }

// Shutdown does nothing: there is no server.
func (e *Server) Shutdown() {}

// Start returns ErrNotBuiltIn: this binary was built without the embedded
// server.
func Start(Config, zerolog.Logger) (*Server, error) { return nil, ErrNotBuiltIn }
