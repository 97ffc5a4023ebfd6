//go:build noembed

package consumers

import "github.com/rs/zerolog"

// Embedded stands for the nats-server a noembed binary does not have.
type Embedded struct{}

// ClientURL is empty: there is no server.
func (e *Embedded) ClientURL() string { return "" }

// Shutdown does nothing: there is no server.
func (e *Embedded) Shutdown() {}

// StartEmbedded returns ErrNoEmbedded: this binary was built without the
// embedded server.
func StartEmbedded(EmbeddedConfig, zerolog.Logger) (*Embedded, error) { return nil, ErrNoEmbedded }
