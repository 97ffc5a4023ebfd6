// Package tracing tells whether OpenTelemetry spans would be recorded, so
// that the stages and the model calls make none when they would not.
package tracing

import "go.opentelemetry.io/otel"

// untraced is the global tracer provider before any is set: it records
// nothing.
var untraced = otel.GetTracerProvider()

// On reports whether a tracer provider has been set (OTLP on), so that a
// span would be recorded. Without one, a span records nothing and costs its
// attributes and options all the same.
func On() bool { return otel.GetTracerProvider() != untraced }
