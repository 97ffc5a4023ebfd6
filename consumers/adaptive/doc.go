// Package adaptive is the worker pools' concurrency limit: how many thoughts
// a pool works on at once. Fixed, it is a plain semaphore; adaptive (the
// default), it grows as answers come back while their latency holds and
// shrinks when the work behind it pushes back (Concurrency), in the family of
// Netflix's concurrency-limits and Envoy's adaptive concurrency filter.
package adaptive
