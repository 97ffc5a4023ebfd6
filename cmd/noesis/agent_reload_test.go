package main

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
)

// An agent added while the server runs, as agent add says: after the first
// reload it logs in, but nats-server (2.15.2) routes the new account's
// import of noesis.thoughts.<id> to the stream only at the second ("no
// response from stream" until then); after the second it publishes, and the
// agents there before still do. agent add and docs/security.md say so.
func TestAgentAddedWhileRunningPublishesAfterTwoReloads(t *testing.T) {
	ns, seeds, conf := authServer(t)
	admin, err := nats.Connect(ns.ClientURL(), nats.UserInfo("admin", "admin-pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ajs, _ := jetstream.New(admin)
	if err := consumers.EnsureStreams(context.Background(), ajs, consumers.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "", "agent", "add", "dave", "--conf", conf, "--dir", seeds)
	if err != nil || !strings.Contains(out, "reload the NATS server twice to let it in") {
		t.Fatalf("agent add: %v\n%s", err, out)
	}
	reload := func() {
		opts, err := server.ProcessConfigFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		opts.Port = ns.Addr().(*net.TCPAddr).Port
		opts.StoreDir, opts.NoLog, opts.NoSigs, opts.PidFile = filepath.Dir(ns.StoreDir()), true, true, ""
		if err := ns.ReloadOptions(opts); err != nil {
			t.Fatalf("reload: %v", err)
		}
	}
	publish := func(id string) error {
		nc, err := nats.Connect(ns.ClientURL(), agentAuth(t, seeds, id), nats.CustomInboxPrefix(AgentInboxPrefix(id)))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = js.Publish(ctx, consumers.ThoughtSubject(id), []byte(`{"event_id":"e","agent_id":"`+id+`","content":{"user_input":"hi"}}`))
		return err
	}
	reload()
	t.Logf("after one reload, dave's publish: %v", publish("dave")) // "no response from stream" with nats-server 2.15.2
	reload()
	for _, id := range []string{"dave", "alice"} {
		if err := publish(id); err != nil {
			t.Errorf("%s cannot publish after the second reload: %v", id, err)
		}
	}
}
