// Package embedded runs a JetStream-enabled nats-server inside the noesis
// process (`noesis serve` without NATS_URL, benchmarks), configured as
// nats.conf is. A binary built with the noembed tag (the container image)
// has none: Start returns ErrNotBuiltIn.
package embedded
