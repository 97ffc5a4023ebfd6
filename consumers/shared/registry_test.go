package shared_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
