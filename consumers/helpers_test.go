package consumers_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
)

// withStreams starts a NATS server with noesis's streams and returns a
// JetStream client and a context cancelled when the test ends.
func withStreams(t *testing.T) (context.Context, jetstream.JetStream) {
	t.Helper()
	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := consumers.EnsureStreams(ctx, js, consumers.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	return ctx, js
}
