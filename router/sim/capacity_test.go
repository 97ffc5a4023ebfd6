package sim_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/noesis-dev/noesis/router/sim"
	"github.com/noesis-dev/noesis/router/sim/simtest"
)

// A provider with a capacity generates that many answers at once and
// queues the rest: every call is answered, never more at once than the
// capacity.
func TestCapacityQueuesTheRest(t *testing.T) {
	const model, capacity, calls = "test/model", 4, 24
	profiles := map[string]sim.Profile{model: {Latency: 50 * time.Millisecond, TokensPerSecond: 50}}
	for _, tc := range []struct {
		capacity int
		most     int64
	}{{capacity, capacity}, {0, calls}} {
		s, url := simtest.Start(t, sim.Config{LatencyScale: 1, Lengths: sim.LengthsSeed, Profiles: profiles, Capacity: tc.capacity})
		c := client(url)
		var wg sync.WaitGroup
		errs := make(chan error, calls)
		for i := range calls {
			wg.Go(func() {
				_, err := c.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{Model: model,
					Messages: []openai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("call %d", i)}}})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("capacity %d: %v", tc.capacity, err)
			}
		}
		peak := s.PeakGenerating()
		if tc.capacity > 0 && (peak > tc.most || peak < 1) {
			t.Errorf("capacity %d: %d answers generated at once, want 1..%d", tc.capacity, peak, tc.most)
		}
		if tc.capacity == 0 && peak <= capacity {
			t.Errorf("no capacity: at most %d answers at once for %d concurrent calls; the check above could not fail", peak, calls)
		}
	}
}
