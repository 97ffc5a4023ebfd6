package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/router/sim"
)

// noesis status --json agrees with JetStream's own consumer info.
func TestStatusMatchesConsumerInfo(t *testing.T) {
	r := newRig(t, sim.Config{})
	r.cfg.Tiers = []string{"fast", "reasoning"}
	runService(t, r.cfg)
	fastOnly := r.cfg
	fastOnly.Tiers = []string{"fast"}
	runService(t, fastOnly)
	got := collect(t, r.nc)
	for i := 0; i < 30; i++ {
		th := thought(i, "status thought")
		th.Content.UserInput += string(rune('a' + i%26))
		th.Content.Depth = 1
		publishThought(t, r.js, th)
	}
	got.waitFor(t, 20*time.Second, map[string]int{"narratives": 30, "verdicts": 30})
	waitConsumerIdle(t, r.js, "tribunal", 30)
	t.Setenv("NATS_URL", r.ns.ClientURL())

	out, err := runCLI(t, "", "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(st.Workers) != 2 {
		t.Fatalf("%d workers, want 2: %+v", len(st.Workers), st.Workers)
	}
	for _, cs := range st.Consumers {
		c, err := r.js.Consumer(context.Background(), consumers.StreamThoughts, cs.Stage)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cs.Pending != info.NumPending || cs.AckPending != info.NumAckPending || cs.Redelivered != info.NumRedelivered ||
			cs.Delivered != info.Delivered.Stream || cs.AckFloor != info.AckFloor.Stream {
			t.Errorf("%s: status %+v, consumer info pending %d ack pending %d redelivered %d delivered %d ack floor %d",
				cs.Stage, cs, info.NumPending, info.NumAckPending, info.NumRedelivered, info.Delivered.Stream, info.AckFloor.Stream)
		}
		want := map[string]int{"narrative": 2, "tribunal": 1, "analysis": 0}[cs.Stage]
		if cs.Workers != want {
			t.Errorf("%s: %d workers, want %d", cs.Stage, cs.Workers, want)
		}
	}
	if len(st.Streams) != 3 || st.Streams[0].Messages != 30 {
		t.Errorf("streams %+v", st.Streams)
	}
	var breakers, limits int
	for _, w := range st.Workers {
		breakers += len(w.Breakers)
		for stage, l := range w.Limits {
			limits++
			if !l.Adaptive || l.Limit < 4 {
				t.Errorf("worker %s, %s: limit %+v, want an adaptive limit of at least 4 (the default)", w.ID, stage, l)
			}
		}
	}
	if limits != 3 {
		t.Errorf("%d pool limits announced, want 3 (fast and reasoning, and fast)", limits)
	}
	if breakers != 3 {
		t.Errorf("judge breaker states reported: %d, want 3 (one tribunal worker)", breakers)
	}
	table, err := runCLI(t, "", "status")
	if err != nil || !strings.Contains(table, "VERITAS closed") || !strings.Contains(table, "NOESIS_THOUGHTS") || !strings.Contains(table, "adaptive") {
		t.Fatalf("%v\n%s", err, table)
	}
}
