package pipeline

import "github.com/noesis-dev/noesis/pipeline/breaker"

// The circuit breaker is package breaker's now. These names stay only while
// the router's and the service's uncommitted moves still name them; they go
// once those land (issue 22).
type (
	// Breaker is breaker.Breaker.
	Breaker = breaker.Breaker
	// BreakerConfig is breaker.Config.
	BreakerConfig = breaker.Config
	// BreakerState is breaker.State.
	BreakerState = breaker.State
)

// The breaker states, as breaker's.
const (
	BreakerClosed   = breaker.Closed
	BreakerOpen     = breaker.Open
	BreakerHalfOpen = breaker.HalfOpen
)
