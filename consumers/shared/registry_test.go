package shared_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/consumers/natstest"
	"github.com/noesis-dev/noesis/consumers/shared"
)

// An entry of the workers bucket that is not a worker's announcement (what
// an agent's PubAck wrote there, text, an announcement under another
// worker's key) is no worker: it is left out, with a reason naming its key.
func TestEntriesThatAreNoWorkerAreSkipped(t *testing.T) {
	js := natstest.JetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg, err := shared.NewRegistry(ctx, js, shared.BucketConfig{}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	announced := make(chan struct{})
	go func() {
		defer close(announced)
		reg.Announce(ctx, func() shared.WorkerInfo {
			return shared.WorkerInfo{ID: "host-1:42", Version: "v1", Tiers: []string{"fast"}, Started: time.Now().UTC()}
		})
	}()
	t.Cleanup(func() { cancel(); <-announced })

	kv, err := js.KeyValue(ctx, shared.WorkersBucket)
	if err != nil {
		t.Fatal(err)
	}
	seen := time.Now().UTC().Format(time.RFC3339Nano)
	bad := map[string]string{
		"phantom":   `{"stream":"NOESIS_THOUGHTS","seq":7}`, // a PubAck
		"junk":      "garbage",
		"empty":     "",
		"elsewhere": `{"id":"host-2:7","version":"v1","tiers":["fast"],"started":"` + seen + `","seen":"` + seen + `"}`,
		"host-3_9":  `{"id":"host-3:9","version":"v1","tiers":["fast"],"started":"` + seen + `"}`, // never announced
	}
	for k, v := range bad {
		if _, err := kv.Put(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	var workers []shared.WorkerInfo
	var skipped []error
	natstest.Eventually(t, 5*time.Second, func() bool {
		workers, skipped, err = shared.ReadWorkers(ctx, js)
		return err == nil && len(workers)+len(skipped) == 1+len(bad)
	}, func() string { return fmt.Sprintf("workers %+v, skipped %v, err %v", workers, skipped, err) })
	if len(workers) != 1 || workers[0].ID != "host-1:42" {
		t.Errorf("workers %+v, want only host-1:42", workers)
	}
	for k := range bad {
		found := false
		for _, e := range skipped {
			found = found || errors.Is(e, shared.ErrBadWorker) && strings.Contains(e.Error(), k)
		}
		if !found {
			t.Errorf("entry %s not reported as skipped: %v", k, skipped)
		}
	}
	if listed, err := shared.ListWorkers(ctx, js); err != nil || len(listed) != 1 {
		t.Errorf("ListWorkers: %d workers, %v; want the one", len(listed), err)
	}
}

// A worker is alone while the bucket holds no other worker's announcement.
// One that joins is seen by the watch as it announces (the listing here
// comes only every hour); one that leaves is seen gone at the next listing.
func TestWatchOthersSeesWorkersComeAndGo(t *testing.T) {
	js := natstest.JetStream(t)
	for _, c := range []struct {
		name  string
		every time.Duration
		leave bool
	}{{"a joining worker is seen as it announces", time.Hour, false}, {"a leaving one at the next listing", 100 * time.Millisecond, true}} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			reg, err := shared.NewRegistry(ctx, js, shared.BucketConfig{}, c.every)
			if err != nil {
				t.Fatal(err)
			}
			var said []bool
			var mu sync.Mutex
			last := func() (bool, int) {
				mu.Lock()
				defer mu.Unlock()
				if len(said) == 0 {
					return false, 0
				}
				return said[len(said)-1], len(said)
			}
			var owned sync.WaitGroup
			announce := func(ctx context.Context, id string) {
				owned.Go(func() {
					reg.Announce(ctx, func() shared.WorkerInfo { return shared.WorkerInfo{ID: id, Version: "v1", Started: time.Now().UTC()} })
				})
			}
			announce(ctx, "host-1:1:"+c.name[:1])
			owned.Go(func() {
				reg.WatchOthers(ctx, "host-1:1:"+c.name[:1], func(alone bool) { mu.Lock(); said = append(said, alone); mu.Unlock() })
			})
			state := func() string { mu.Lock(); defer mu.Unlock(); return fmt.Sprintf("said %v", said) }
			natstest.Eventually(t, 5*time.Second, func() bool { a, _ := last(); return a }, state)

			otherCtx, leave := context.WithCancel(ctx)
			announce(otherCtx, "host-2:2:"+c.name[:1])
			natstest.Eventually(t, 5*time.Second, func() bool { a, _ := last(); return !a }, state)
			if c.leave {
				leave() // Announce removes its entry
				natstest.Eventually(t, 5*time.Second, func() bool { a, _ := last(); return a }, state)
			}
			cancel()
			owned.Wait()
			leave()
			if a, n := last(); a || n == 0 {
				t.Errorf("the watch ended saying alone: %s", state())
			}
			// The next subtest's bucket starts empty.
			if err := js.DeleteKeyValue(context.Background(), shared.WorkersBucket); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A worker that cannot list the registry shares: with its bucket lost (a
// server restart loses it, being in memory) it is not alone; once the
// keeper has made the bucket again and the worker announced itself there,
// it is alone again.
func TestWatchOthersSharesWhileTheRegistryIsLost(t *testing.T) {
	js := natstest.JetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	reg, err := shared.NewRegistry(ctx, js, shared.BucketConfig{}, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var alone atomic.Bool
	var owned sync.WaitGroup
	owned.Go(func() {
		reg.Announce(ctx, func() shared.WorkerInfo {
			return shared.WorkerInfo{ID: "host-1:1", Version: "v1", Started: time.Now().UTC()}
		})
	})
	owned.Go(func() { reg.WatchOthers(ctx, "host-1:1", alone.Store) })
	defer func() { cancel(); owned.Wait() }()
	natstest.Eventually(t, 5*time.Second, alone.Load, func() string { return "never alone" })
	if err := js.DeleteKeyValue(ctx, shared.WorkersBucket); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, func() bool { return !alone.Load() }, func() string { return "alone with the registry lost" })
	if _, err := reg.Keep(ctx); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, alone.Load, func() string { return "not alone again once the registry was back" })
}
