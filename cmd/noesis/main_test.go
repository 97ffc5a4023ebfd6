package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: each
// service, server and command a test starts must be stopped by its end.
func TestMain(m *testing.M) {
	if os.Getenv(asCLIEnv) == "1" { // a child a test started as the noesis binary
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m,
		// nats-server's own: when a stream sources another, the server waits
		// up to 30 s for the source consumer's answer in a goroutine that
		// does not watch for shutdown (server/stream.go, srcConsumerWaitTime).
		// Shutdown and WaitForShutdown have returned; it ends on its timer.
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*stream).trySetupSourceConsumer.func3"),
	)
}

// asCLIEnv, set to 1, makes this test binary the noesis command itself,
// run with its arguments: what a command under test starts as a child of
// os.Executable() (bench pipeline's worker and client floor) is then noesis.
const asCLIEnv = "NOESIS_TEST_AS_CLI"
