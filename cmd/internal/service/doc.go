// Package service wires noesis's components into one running worker: the
// NATS connection (or an embedded server), the streams, the router with its
// cache and limits, the tribunal, a pool per tier, metrics, health and the
// worker registry. cmd/noesis's serve, and the pipeline bench, start it.
//
// Start builds the parts in the order one thought meets them (connect.go,
// routing.go, pools.go, upkeep.go, endpoints.go, registry.go); every
// goroutine it starts belongs to the Service, and Wait returns only once
// all of them have returned and everything is closed.
package service
