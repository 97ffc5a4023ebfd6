package consumers

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/pipeline/tracing"
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

// Get returns the first value of key.
func (h headerCarrier) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set makes value key's only value.
func (h headerCarrier) Set(key, value string) { h[key] = []string{value} }

// Keys lists the header's keys.
func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// traced is the middleware that makes a consumer span per delivery, a child
// of the agent's trace context (W3C headers on the thought), covering the
// stage's work and the publish of its output.
func traced(stage pipeline.Stage) middleware {
	return func(next handlerFunc) handlerFunc {
		return func(ctx context.Context, d *delivery) (result, error) {
			ctx = propagator.Extract(ctx, headerCarrier(d.msg.Headers()))
			if !tracing.On() {
				// The span would record nothing and carry the thought's
				// trace context unchanged, as ctx already does: 2.5 % of a
				// worker's processor on cache hits, for nothing.
				return next(ctx, d)
			}
			ctx, span := tracer().Start(ctx, "noesis "+string(stage), trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(attribute.String("noesis.event_id", d.thought.EventID), attribute.String("noesis.agent_id", d.thought.AgentID),
					attribute.String("noesis.stage", string(stage)), attribute.Int64("noesis.delivery", int64(d.delivered))))
			defer span.End()
			r, err := next(ctx, d)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, "stage failed")
			}
			return r, err
		}
	}
}
