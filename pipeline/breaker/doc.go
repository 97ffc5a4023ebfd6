// Package breaker is a circuit breaker: it refuses calls to something that
// keeps failing, then lets probe calls through after a cool-down. The
// tribunal keeps one per judge (pipeline) and the router one per model
// target (router).
package breaker
