package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: each
// service, server and command a test starts must be stopped by its end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// nats-server's own: when a stream sources another, the server waits
		// up to 30 s for the source consumer's answer in a goroutine that
		// does not watch for shutdown (server/stream.go, srcConsumerWaitTime).
		// Shutdown and WaitForShutdown have returned; it ends on its timer.
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*stream).trySetupSourceConsumer.func3"),
	)
}
