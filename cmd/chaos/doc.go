// Command chaos runs noesis through the failures a stream processor must
// survive, with real processes: nats-server (single or a three-node cluster),
// the simulator, and several `noesis serve` workers. For each scenario it
// publishes thoughts, breaks something halfway, waits, then reads the streams
// and prints a table: thoughts sent, outputs, lost, duplicates, dead letters
// and upstream model calls. It exits non-zero when a scenario loses or
// duplicates anything, or misses its own expectation.
//
//	go run ./cmd/chaos -noesis bin/noesis -n 5000
package main
