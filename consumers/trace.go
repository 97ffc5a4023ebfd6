package consumers

import (
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracer makes the stage spans. Without a configured provider (OTLP off) it
// records nothing but still carries the thought's trace context to its outputs.
// It is asked of the global provider at each use, so a provider set later (or
// set again, as tests do) is the one that gets the spans.
func tracer() trace.Tracer { return otel.Tracer("github.com/noesis-dev/noesis/consumers") }

// propagator reads and writes W3C traceparent and tracestate headers.
var propagator = propagation.TraceContext{}

// headerCarrier adapts NATS headers, whose keys are case-sensitive, to the
// propagator: the W3C names are lower case.
type headerCarrier nats.Header

func (h headerCarrier) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h headerCarrier) Set(key, value string) { h[key] = []string{value} }

func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
