//go:build !noembed

package embedded_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/noesis-dev/noesis/consumers/embedded"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The embedded server takes JetStream clients on the port the kernel chose,
// and its Shutdown leaves nothing of it running.
func TestStartServesJetStreamAndShutdownStopsIt(t *testing.T) {
	srv, err := embedded.Start(embedded.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(context.Background()); err != nil {
		t.Fatalf("JetStream not enabled: %v", err)
	}
}

func TestOptionsRefusesABadListen(t *testing.T) {
	for _, listen := range []string{"4222", "127.0.0.1:port", "127.0.0.1:70000"} {
		if _, err := (embedded.Config{Listen: listen}).Options(); err == nil {
			t.Errorf("Listen %q: no error", listen)
		}
	}
	opts, err := embedded.Config{}.Options()
	if err != nil || opts.Host != "127.0.0.1" || opts.Port != 4222 || opts.StoreDir != embedded.Defaults.DataDir || !opts.JetStream {
		t.Fatalf("defaults: %+v, %v; want nats.conf's", opts, err)
	}
}
