package consumers

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
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

// delivery is one delivery of a thought on its way through the pool's
// steps, and what the steps made of it.
type delivery struct {
	msg       jetstream.Msg
	thought   pipeline.Thought
	delivered uint64
	log       zerolog.Logger

	out  pipeline.Output
	took time.Duration // how long the handler's last call took
	dup  bool          // the output was already in the stream
}

// step does a delivery's work; its error decides ack, nak or dead letter.
// Steps take middleware as handlers do (pipeline.Middleware), but they
// wrap the publish too, which a span must cover.
type step func(ctx context.Context, d *delivery) error

// chainSteps wraps s in ms, the first outermost.
func chainSteps(s step, ms ...func(step) step) step {
	for i := len(ms) - 1; i >= 0; i-- {
		s = ms[i](s)
	}
	return s
}

// traced is the middleware that makes a consumer span per delivery, a child
// of the agent's trace context (W3C headers on the thought), covering the
// stage's work and the publish of its output.
func traced(stage pipeline.Stage) func(step) step {
	return func(next step) step {
		return func(ctx context.Context, d *delivery) error {
			ctx = propagator.Extract(ctx, headerCarrier(d.msg.Headers()))
			ctx, span := tracer().Start(ctx, "noesis "+string(stage), trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(attribute.String("noesis.event_id", d.thought.EventID), attribute.String("noesis.agent_id", d.thought.AgentID),
					attribute.String("noesis.stage", string(stage)), attribute.Int64("noesis.delivery", int64(d.delivered))))
			defer span.End()
			err := next(ctx, d)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, "stage failed")
			}
			return err
		}
	}
}
