package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// A server started from the shipped nats-auth.conf: agents publish thoughts and
// read outputs, nothing more; workers run the whole pipeline; anonymous is refused.
func TestAccessControlFromShippedConf(t *testing.T) {
	t.Setenv("NOESIS_AGENT_PASSWORD", "agent-pw")
	t.Setenv("NOESIS_WORKER_PASSWORD", "worker-pw")
	t.Setenv("NOESIS_ADMIN_PASSWORD", "admin-pw")
	opts, err := server.ProcessConfigFile("../../nats-auth.conf")
	if err != nil {
		t.Fatal(err)
	}
	opts.Port, opts.StoreDir, opts.NoLog, opts.NoSigs = server.RANDOM_PORT, t.TempDir(), true, true
	ns := natstest.RunServerWithOptions(t, opts)

	if nc, err := nats.Connect(ns.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("an anonymous connection was accepted")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("anonymous: %v", err)
	}

	_, simURL := simtest.Start(t, sim.Config{})
	cfg := testConfig(t, ns, simURL)
	cfg.NATSUser, cfg.NATSPassword = "worker", "worker-pw"
	runService(t, cfg)

	violations := make(chan error, 8)
	agent, err := nats.Connect(ns.ClientURL(), nats.UserInfo("agent", "agent-pw"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	ajs, _ := jetstream.New(agent)
	got := collectOn(t, agent, "noesis.narratives.>", "noesis.verdicts.>")
	th := thought(1, "an agent's thought through access control")
	th.Content.Depth = 1
	publishThought(t, ajs, th)
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": 1, "verdicts": 1})

	// Forbidden: forging a verdict, reading dead letters, the JetStream API.
	_ = agent.Publish("noesis.verdicts.daimon-1", []byte(`{"decision":"pass"}`))
	_ = agent.Publish("_noesis.store.verdicts.daimon-1", []byte(`{"decision":"pass"}`))
	if _, err := agent.Subscribe("noesis.dlq.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	_ = agent.Flush()
	seen := 0
	deadline := time.After(3 * time.Second)
	for seen < 3 {
		select {
		case err := <-violations:
			if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(err.Error(), "Permissions Violation") {
				t.Fatalf("unexpected async error: %v", err)
			}
			seen++
		case <-deadline:
			t.Fatalf("%d permission violations reported, want 3", seen)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := ajs.Stream(ctx, "NOESIS_DLQ"); err == nil {
		t.Fatal("the agent read the dead-letter stream's info")
	}
	time.Sleep(200 * time.Millisecond)
	got.exactlyOnce(t, "verdicts", []string{th.EventID}) // the forged verdict went nowhere
}
