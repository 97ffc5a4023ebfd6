package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/pipeline"
	"github.com/noesis-dev/noesis/router/sim"
)

// A hostile agent past its bound of reviews cannot stop the tribunal for the
// others. Every thought of alice's past her bound is dead-lettered at once
// with the reason: were it put back for a minute instead, each one
// would stay unacknowledged on the tribunal's consumer for a minute, and
// alice's few past a bound of one (as many as the consumer's
// MaxAckPending, here four) would stop the consumer from handing anyone
// another thought: bob's verdict came a minute late, and each of alice's
// was judged again on every delivery. Under the shipped nats-auth.conf,
// with the simulator's judges.
func TestReviewBoundDoesNotStallOtherAgents(t *testing.T) {
	const pending, flood = 4, 6
	ns, seeds, _ := authServer(t)
	cfg := workerConfig(t, ns, sim.Config{Shape: "tagged-lines"})
	cfg.AgentMaxReviews = 1
	cfg.Tier.Of(pipeline.TierReasoning).Concurrency, cfg.Tier.Of(pipeline.TierReasoning).MaxAckPending = 2, pending
	var logs natstest.Buffer
	runServiceLogging(t, cfg, &logs, zerolog.WarnLevel)
	alice, bob := newTenant(t, ns, seeds, "alice"), newTenant(t, ns, seeds, "bob")

	for i := range flood {
		alice.publish(t, fmt.Sprintf("alice-capital-%d", i), "alice", "I will tidy the archive sim:offense=capital@dike "+fmt.Sprint(i))
	}
	// Her thoughts past her bound are refused their reviews (without the fix,
	// as many as the consumer may have unacknowledged, put back).
	natstest.Eventually(t, 20*time.Second, func() bool { return strings.Count(logs.String(), "review not queued") >= pending },
		func() string {
			return fmt.Sprintf("%d of alice's reviews refused; log: %s", strings.Count(logs.String(), "review not queued"), logs.String())
		})
	bob.publish(t, "bob-capital", "bob", "I will tidy the archive sim:offense=capital@dike")
	natstest.Eventually(t, 15*time.Second, func() bool { return bob.count(verdictRoot) == 1 },
		func() string {
			return "bob's verdict not published while alice's thoughts past her bound of reviews waited"
		})
	// Alice's are dead letters with the reason, each told to her, each judged once.
	natstest.Eventually(t, 15*time.Second, func() bool { return alice.count(noticeRoot) == flood-1 },
		func() string {
			return fmt.Sprintf("alice told of %d dead letters; want %d", alice.count(noticeRoot), flood-1)
		})
	for _, m := range alice.got.messages(noticeRoot) {
		if !strings.Contains(string(m.Data), "NOESIS_AGENT_MAX_REVIEWS") {
			t.Errorf("notice %s does not say why", m.Data)
		}
	}
	if n, verdicts := strings.Count(logs.String(), "review not queued"), alice.count(verdictRoot); n != flood-1 || verdicts != 1 {
		t.Errorf("alice's reviews refused %d times, %d of her verdicts published; want each of %d refused once and 1 published", n, verdicts, flood-1)
	}
}

// The shipped worker user may purge NOESIS_THOUGHTS (the compactor's) and
// no other noesis stream: every stream StreamConfigs sets up is named, so
// one added later without its deny in nats-auth.conf fails here. Without
// the deny of NOESIS_DLQ_KEYS a worker could empty it, and every letter
// written again after the duplicate window would be stored twice.
func TestShippedWorkerPurgesOnlyThoughts(t *testing.T) {
	ns, _, _ := authServer(t)
	ctx := context.Background()
	connect := func(user, pw string) jetstream.JetStream {
		nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo(user, pw), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	admin, worker := connect("admin", "admin-pw"), connect("worker", "worker-pw")
	defaults := config.Defaults()
	sc := defaults.Streams()
	if err := consumers.EnsureStreams(ctx, admin, sc); err != nil {
		t.Fatal(err)
	}
	if err := consumers.EnsureAdvisoryStream(ctx, admin, sc); err != nil {
		t.Fatal(err)
	}
	if err := review.Ensure(ctx, admin, review.Config{}); err != nil {
		t.Fatal(err)
	}
	names := []string{consumers.StreamAdvisories, review.Stream}
	for _, s := range consumers.StreamConfigs(sc) {
		names = append(names, s.Name)
	}
	for _, name := range names {
		s, err := worker.Stream(ctx, name)
		if err != nil {
			t.Fatalf("worker reads %s: %v", name, err)
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond) // a refused request is never answered
		err = s.Purge(pctx)
		cancel()
		if name == consumers.StreamThoughts {
			if err != nil {
				t.Errorf("the worker may not purge %s: %v", name, err)
			}
		} else if err == nil {
			t.Errorf("the worker purged %s", name)
		}
	}
}
