package natstest

import "go.uber.org/goleak"

// LeakOptions are the goroutines of nats-server's own that a test's server
// may leave running a while after its Shutdown, for goleak.VerifyTestMain:
//   - when a stream that sources another (NOESIS_THOUGHTS sources
//     NOESIS_REPLAYS) sets up its source, the server waits for the source
//     consumer's answer for up to 30 s (srcConsumerWaitTime) in a goroutine
//     that does not watch the server's shutdown; it ends on its timer.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*stream).trySetupSourceConsumer.func3"),
	}
}
