// Command noesis turns the thoughts of AI agents, published on NATS
// JetStream, into judged and narrated results. See README.md.
package main
