// Package setup creates the JetStream streams and key-value buckets noesis
// runs on, idempotently, and tries again while JetStream is not there yet
// (a server starting, a cluster electing its leaders) or another process won
// a race to create the same thing. The delivery core (consumers) and the
// shared state (consumers/shared) both set their pieces up through it.
package setup
