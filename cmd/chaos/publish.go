package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
)

// waitConsumers waits until the workers have declared the streams and consumers.
func waitConsumers(js jetstream.JetStream, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, e1 := js.Consumer(ctx, consumers.StreamThoughts, "narrative")
		_, e2 := js.Consumer(ctx, consumers.StreamThoughts, "tribunal")
		cancel()
		if e1 == nil && e2 == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the workers did not declare their consumers within %s", d)
}

// publishAll publishes every thought with Nats-Msg-Id = event_id, trying again
// through outages (the id makes a retry harmless) until ctx ends.
func publishAll(ctx context.Context, js jetstream.JetStream, thoughts []pipeline.Thought) error {
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(thoughts); i += 4 {
				data, _ := json.Marshal(thoughts[i])
				deadline := time.Now().Add(60 * time.Second)
				for {
					pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
					_, err := js.Publish(pctx, consumers.ThoughtSubject(thoughts[i].AgentID), data, jetstream.WithMsgID(thoughts[i].EventID))
					cancel()
					if err == nil {
						break
					}
					if time.Now().After(deadline) || ctx.Err() != nil {
						errs <- fmt.Errorf("thought %s: %w", thoughts[i].EventID, err)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// waitStored waits until the outputs and dead-letter streams hold n messages.
func waitStored(js jetstream.JetStream, n int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if stored(js) >= n {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("fewer than %d outputs after %s", n, d)
}

func stored(js jetstream.JetStream) int {
	total := 0
	for _, name := range []string{consumers.StreamOutputs, consumers.StreamDLQ} {
		if info, err := streamInfo(js, name); err == nil {
			total += int(info.State.Msgs)
		}
	}
	return total
}
