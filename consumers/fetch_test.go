package consumers_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/pipeline"
)

// A pool whose fair queue is full most of the time (50 workers, each thought
// taking 2 ms, 20,000 thoughts queued) takes every thought and never sits
// still while thoughts wait. Consumer info is read every 250 ms on a
// connection of its own; no progress for 5 s while thoughts wait and none
// is in hand fails the test.
//
// A liveness test, not a reproduction: nats.go's Messages iterator, which
// the pool pulled with before, was left under the bench's load with no pull
// request at the server while it counted one outstanding (a refill skipped
// while an earlier request was being sent), and the pool stood still for up
// to a minute; but that race needs the request's whole batch to arrive and
// be read while the goroutine that sent it has not yet marked it sent, and
// here it did not happen (this test passed against the iterator with its
// default heartbeat, at 2 to 200 workers, 0 to 3 ms of work, 20,000 to
// 40,000 thoughts, GOMAXPROCS 1 and 2, with and without -race). The fetcher
// (fetch.go) has no such count to go wrong.
func TestAPoolUnderLoadNeverStallsWithThoughtsWaiting(t *testing.T) {
	const n, agents, workers = 20000, 40, 50
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	_, watch := natstest.Connect(t, srv)
	ctx := context.Background()
	if err := consumers.EnsureStreams(ctx, js, consumers.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	var worked atomic.Int64
	slow := func(ctx context.Context, th pipeline.Thought) (pipeline.Output, error) {
		time.Sleep(2 * time.Millisecond) // 50 workers: ~25,000 thoughts/s at most, slower than the pulls
		worked.Add(1)
		return echo(pipeline.StageNarrative)(ctx, th)
	}
	pool := runPool(t, js, consumers.PoolConfig{Stage: pipeline.StageNarrative, Concurrency: workers}, slow)
	began := time.Now()
	for i := range n {
		agent := fmt.Sprintf("a%d", i%agents)
		if _, err := js.PublishAsync(consumers.ThoughtSubject(agent), thoughtJSON(t, fmt.Sprintf("s-%d", i), agent, "x")); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 || i == n-1 {
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(30 * time.Second):
				t.Fatal("thoughts not stored in 30 s")
			}
		}
	}

	t.Logf("published in %s, %d worked", time.Since(began), worked.Load())
	cons, err := watch.Consumer(ctx, consumers.StreamThoughts, string(pipeline.StageNarrative))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	last, lastMoved := int64(-1), time.Now()
	for tick := time.NewTicker(250 * time.Millisecond); pool.Stats().Published < n; <-tick.C {
		if time.Now().After(deadline) {
			t.Fatalf("after 3 min: %d of %d thoughts published (stats %+v)", pool.Stats().Published, n, pool.Stats())
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if w := worked.Load(); w != last {
			last, lastMoved = w, time.Now()
		}
		if info.NumPending > 0 && info.NumAckPending == 0 && time.Since(lastMoved) > 5*time.Second {
			t.Fatalf("stalled %s with %d thoughts waiting and none in hand (num_waiting %d; %d worked)",
				time.Since(lastMoved).Round(time.Second), info.NumPending, info.NumWaiting, last)
		}
	}
	t.Logf("%d thoughts worked in %s", worked.Load(), time.Since(began))
}

// A fetcher waiting at an idle consumer ends within a second or two when it
// is stopped or drained: Next returns ErrMsgIteratorClosed.
func TestAnIdleFetcherStopsAndDrainsPromptly(t *testing.T) {
	for _, tc := range []struct {
		name   string
		end    func(jetstream.MessagesContext)
		within time.Duration
	}{
		{"stop", jetstream.MessagesContext.Stop, 500 * time.Millisecond},
		{"drain", jetstream.MessagesContext.Drain, consumers.FetchMaxWait + 1500*time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, js := withStreams(t)
			it, next := waitingFetcher(t, ctx, js)
			ended := time.Now()
			tc.end(it)
			select {
			case err := <-next:
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					t.Fatalf("Next after %s: %v, want ErrMsgIteratorClosed", tc.name, err)
				}
				if took := time.Since(ended); took > tc.within {
					t.Fatalf("Next returned %s after %s, want within %s", took, tc.name, tc.within)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("Next still waiting 10 s after %s", tc.name)
			}
			if _, err := it.Next(); !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				t.Fatalf("Next again: %v, want ErrMsgIteratorClosed", err)
			}
		})
	}
}

// A fetcher whose consumer is deleted, while its request waits at the server
// or before it asks, returns an error the pool's puller takes for "gone"
// (it sets the consumer up again): ErrConsumerDeleted or ErrConsumerNotFound.
func TestAFetcherTellsOfItsDeletedConsumer(t *testing.T) {
	for _, waiting := range []bool{true, false} {
		t.Run(fmt.Sprintf("waiting=%v", waiting), func(t *testing.T) {
			ctx, js := withStreams(t)
			var it jetstream.MessagesContext
			var next <-chan error
			if waiting {
				it, next = waitingFetcher(t, ctx, js)
			} else {
				cons, err := js.CreateOrUpdateConsumer(ctx, consumers.StreamThoughts, consumers.ConsumerConfig(consumers.PoolConfig{Stage: pipeline.StageNarrative}))
				if err != nil {
					t.Fatal(err)
				}
				it = consumers.NewFetcher(cons, 10)
			}
			defer it.Stop()
			if err := js.DeleteConsumer(ctx, consumers.StreamThoughts, string(pipeline.StageNarrative)); err != nil {
				t.Fatal(err)
			}
			var err error
			if waiting {
				err = <-next
			} else {
				_, err = it.Next()
			}
			if !errors.Is(err, jetstream.ErrConsumerDeleted) && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				t.Fatalf("Next after the consumer was deleted: %v, want ErrConsumerDeleted or ErrConsumerNotFound", err)
			}
		})
	}
}

// A pool whose consumer is deleted sets it up again and takes the thoughts
// published after.
func TestAPoolSetsItsDeletedConsumerUpAgain(t *testing.T) {
	ctx, js := withStreams(t)
	var seen sync.Map // event id -> true
	h := func(ctx context.Context, th pipeline.Thought) (pipeline.Output, error) {
		seen.Store(th.EventID, true)
		return echo(pipeline.StageNarrative)(ctx, th)
	}
	runPool(t, js, consumers.PoolConfig{Stage: pipeline.StageNarrative, Concurrency: 4}, h)
	worked := func(id string) func() bool {
		return func() bool { _, ok := seen.Load(id); return ok }
	}
	publish := func(id string) {
		t.Helper()
		if _, err := js.Publish(ctx, consumers.ThoughtSubject("a1"), thoughtJSON(t, id, "a1", "x")); err != nil {
			t.Fatal(err)
		}
	}
	publish("before")
	natstest.Eventually(t, 10*time.Second, worked("before"), func() string { return "the first thought was not worked on" })
	if err := js.DeleteConsumer(ctx, consumers.StreamThoughts, string(pipeline.StageNarrative)); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, func() bool {
		_, err := js.Consumer(ctx, consumers.StreamThoughts, string(pipeline.StageNarrative))
		return err == nil
	}, func() string { return "the consumer was not set up again" })
	publish("after")
	natstest.Eventually(t, 15*time.Second, worked("after"), func() string { return "the thought published after the deletion was not worked on" })
}

// waitingFetcher returns a fetcher of the narrative stage's consumer whose
// Next waits, in a goroutine of its own, with its pull request at the
// server (the consumer's num_waiting is 1), and where that Next's error
// comes (nil for a message).
func waitingFetcher(t *testing.T, ctx context.Context, js jetstream.JetStream) (jetstream.MessagesContext, <-chan error) {
	t.Helper()
	cons, err := js.CreateOrUpdateConsumer(ctx, consumers.StreamThoughts, consumers.ConsumerConfig(consumers.PoolConfig{Stage: pipeline.StageNarrative}))
	if err != nil {
		t.Fatal(err)
	}
	it := consumers.NewFetcher(cons, 10)
	t.Cleanup(it.Stop)
	next := nextInBackground(it)
	natstest.Eventually(t, 5*time.Second, func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumWaiting == 1
	}, func() string { return "no pull request waiting at the server" })
	return it, next
}

// nextInBackground calls it.Next in a goroutine of its own and sends its
// error (nil for a message); the test reads it.
func nextInBackground(it jetstream.MessagesContext) <-chan error {
	out := make(chan error, 1)
	go func() {
		_, err := it.Next()
		out <- err
	}()
	return out
}
