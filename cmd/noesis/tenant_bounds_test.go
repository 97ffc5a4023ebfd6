package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// Under the shipped nats-auth.conf, with the simulator's judges, a hostile
// agent floods past both bounds per agent and the other agent is not hurt:
// alice's 40 bad thoughts of 40 KiB keep only her newest three letters in a
// 1 MiB NOESIS_DLQ, and bob's bad thoughts after them are dead-lettered and
// he is told; alice's five capital thoughts get two reviews (her bound) and
// two verdicts, the other three dead-lettered unpublished, and bob's capital
// thought gets its review and its verdict. The worker, which may delete no
// letter, bounds them through the streams alone. Without the bounds bob's
// letters are refused by the full stream and alice's five verdicts are all
// published.
func TestTenantBoundsUnderShippedAuth(t *testing.T) {
	const letters, reviews, flood = 3, 2, 40
	ns, seeds, _ := authServer(t)
	cfg := workerConfig(t, ns, sim.Config{Shape: "tagged-lines"})
	cfg.DLQMaxBytes, cfg.AgentMaxDeadLetters, cfg.AgentMaxReviews = 1<<20, letters, reviews
	var logs natstest.Buffer
	runServiceLogging(t, cfg, &logs, zerolog.WarnLevel)
	admin, err := nats.Connect(ns.ClientURL(), nats.UserInfo("admin", "admin-pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	ajs, _ := jetstream.New(admin)
	ctx := context.Background()

	agents := map[string]*tenant{}
	for _, id := range []string{"alice", "bob"} {
		agents[id] = newTenant(t, ns, seeds, id)
	}
	alice, bob := agents["alice"], agents["bob"]
	for i := range flood {
		alice.publish(t, fmt.Sprintf("alice-bad-%02d", i), "mallory", strings.Repeat("b", 40<<10)) // not its subject's agent: bad input
	}
	dlqBytes := func() uint64 {
		s, err := ajs.Stream(ctx, consumers.StreamDLQ)
		if err != nil {
			return 0
		}
		info, err := s.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.Bytes
	}
	// Her flood is through: every thought dead-lettered, or, without the bound, the stream full.
	natstest.Eventually(t, 30*time.Second, func() bool { return alice.count(noticeRoot) >= flood || dlqBytes() > 1<<20-50<<10 },
		func() string {
			return fmt.Sprintf("alice told of %d dead letters of %d", alice.count(noticeRoot), flood)
		})
	for i := range 2 {
		bob.publish(t, fmt.Sprintf("bob-bad-%d", i), "mallory", strings.Repeat("b", 40<<10))
	}
	natstest.Eventually(t, 20*time.Second, func() bool { return bob.count(noticeRoot) >= 2 },
		func() string {
			return fmt.Sprintf("bob told of %d dead letters of 2 after alice's flood", bob.count(noticeRoot))
		})
	byAgent := map[string]int{}
	all, err := consumers.ListLetters(ctx, ajs, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range all {
		a, _ := consumers.SubjectAgent(l.Subject)
		byAgent[a]++
	}
	if byAgent["alice"] != letters || byAgent["bob"] != 2 {
		t.Fatalf("letters kept: %v; want alice's bound, %d, and bob's 2", byAgent, letters)
	}

	for i := range 5 {
		alice.publish(t, fmt.Sprintf("alice-capital-%d", i), "alice", "I will tidy the archive sim:offense=capital@dike "+fmt.Sprint(i))
	}
	// Her flood is through: the thoughts past her bound dead-lettered, or, without it, every verdict out.
	natstest.Eventually(t, 20*time.Second, func() bool {
		return strings.Count(logs.String(), "review not queued") >= 5-reviews || alice.count(verdictRoot) == 5
	},
		func() string {
			return fmt.Sprintf("%d verdicts of alice's; log: %s", alice.count(verdictRoot), logs.String())
		})
	bob.publish(t, "bob-capital", "bob", "I will tidy the archive sim:offense=capital@dike")
	natstest.Eventually(t, 20*time.Second, func() bool { return bob.count(verdictRoot) == 1 },
		func() string { return "bob's capital verdict not published after alice's flood of reviews" })
	x, err := review.Load(ctx, ajs)
	if err != nil {
		t.Fatal(err)
	}
	waiting := map[string]int{}
	for _, s := range x.List(true) {
		waiting[s.AgentID]++
	}
	if waiting["alice"] != reviews || waiting["bob"] != 1 || alice.count(verdictRoot) != reviews {
		t.Fatalf("reviews waiting %v, alice's verdicts published %d; want alice's %d and bob's 1, and %d", waiting, alice.count(verdictRoot), reviews, reviews)
	}
}

// What a tenant hears, by the collector's root.
const (
	noticeRoot  = "deadletters"
	verdictRoot = "verdicts"
)

// tenant is an agent logged in under the shipped access control, hearing
// its verdicts and dead-letter notices.
type tenant struct {
	id  string
	js  jetstream.JetStream
	got *collector
}

func newTenant(t *testing.T, ns *server.Server, seeds, id string) *tenant {
	t.Helper()
	nc, js := connectAgent(t, ns, id, agentAuth(t, seeds, id), &violations{})
	return &tenant{id: id, js: js, got: collectOn(t, nc, consumers.NoticeSubject(id), consumers.OutputSubject(pipeline.StageTribunal, id))}
}

// publish publishes a thought on the tenant's subject naming agent (another
// than the tenant makes it bad input) for the tribunal.
func (a *tenant) publish(t *testing.T, eventID, agent, text string) {
	t.Helper()
	data, err := json.Marshal(pipeline.Thought{EventID: eventID, AgentID: agent, Content: pipeline.Content{UserInput: text, Depth: 1},
		Stages: []pipeline.Stage{pipeline.StageTribunal}})
	if err == nil {
		_, err = a.js.Publish(context.Background(), consumers.ThoughtSubject(a.id), data)
	}
	if err != nil {
		t.Fatalf("%s's thought %s: %v", a.id, eventID, err)
	}
}

// count is how many messages the tenant has heard under root.
func (a *tenant) count(root string) int { return len(a.got.messages(root)) }
