package fair

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestFairQueueOrder(t *testing.T) {
	type push struct {
		agent    string
		priority string
		n        int
	}
	for _, tc := range []struct {
		name   string
		pushes []push
		want   []string
	}{
		{"one agent keeps its order", []push{{"alice", "", 3}}, []string{"alice-0", "alice-1", "alice-2"}},
		{"a flood waits behind itself", []push{{"alice", "", 4}, {"bob", "", 1}},
			[]string{"alice-0", "bob-0", "alice-1", "alice-2", "alice-3"}},
		{"turns between three agents", []push{{"alice", "", 3}, {"bob", "", 2}, {"carol", "", 1}},
			[]string{"alice-0", "bob-0", "carol-0", "alice-1", "bob-1", "alice-2"}},
		{"critical first, batch last, in turn within each", []push{{"alice", "batch", 2}, {"bob", "", 2}, {"carol", "critical", 1}, {"alice", "critical", 1}},
			[]string{"carol-0", "alice-0", "bob-0", "bob-1", "alice-0", "alice-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := NewQueue[string](100)
			total := 0
			for _, p := range tc.pushes {
				for i := 0; i < p.n; i++ {
					if err := q.Push(context.Background(), p.agent, Band(p.priority), fmt.Sprintf("%s-%d", p.agent, i)); err != nil {
						t.Fatal(err)
					}
					total++
				}
			}
			var got []string
			for i := 0; i < total; i++ {
				item, ok := q.TryPop()
				if !ok {
					t.Fatalf("queue empty after %d of %d", i, total)
				}
				got = append(got, item)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("order %v, want %v", got, tc.want)
			}
			if _, ok := q.TryPop(); ok || q.Len() != 0 {
				t.Errorf("queue not empty: %d left", q.Len())
			}
		})
	}
}

// Push waits for room; Pop waits for an item; both give up when their
// context ends.
func TestFairQueueWaits(t *testing.T) {
	q := NewQueue[int](2)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := q.Push(ctx, "alice", Normal, i); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := q.Push(short, "bob", Normal, 9); err == nil {
		t.Fatal("a push into a full queue did not wait")
	}
	pushed := make(chan error, 1)
	go func() { pushed <- q.Push(ctx, "bob", Normal, 2) }()
	if v, ok := q.Pop(ctx); !ok || v != 0 {
		t.Fatalf("pop = %d, %v", v, ok)
	}
	select {
	case err := <-pushed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting push did not get the room a pop made")
	}
	for _, want := range []int{2, 1} { // bob's turn comes before alice's second
		if v, ok := q.Pop(ctx); !ok || v != want {
			t.Fatalf("pop = %d, %v; want %d", v, ok, want)
		}
	}
	got := make(chan int, 1)
	go func() { v, _ := q.Pop(ctx); got <- v }()
	if err := q.Push(ctx, "carol", Critical, 7); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if v != 7 {
			t.Fatalf("waiting pop got %d", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting pop did not get the item pushed")
	}
	empty, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if _, ok := q.Pop(empty); ok {
		t.Fatal("pop from an empty queue returned an item")
	}
}

// A freed slot goes to the agent whose turn it is, not to the flood's next
// call; a waiter that gives up is passed over.
func TestSlotsServeWaitersInTurn(t *testing.T) {
	s := NewSlots(1)
	ctx := context.Background()
	if err := s.Acquire(ctx, "alice", Normal); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 10)
	wait := func(agent string, b int) {
		go func() {
			if err := s.Acquire(ctx, agent, b); err == nil {
				order <- agent
			}
		}()
	}
	// alice queues three more calls, then bob one, then a critical call of carol's.
	queued := func(n int) { t.Helper(); waitersAre(t, s, n) }
	for i := 1; i <= 3; i++ {
		wait("alice", Normal)
		queued(i)
	}
	gaveUp, cancel := context.WithCancel(ctx)
	go func() { _ = s.Acquire(gaveUp, "dave", Normal) }()
	queued(4)
	cancel()
	wait("bob", Normal)
	queued(5)
	wait("carol", Critical)
	queued(6)
	var got []string
	holder := "alice"
	for i := 0; i < 5; i++ {
		s.Release(holder)
		select {
		case a := <-order:
			got = append(got, a)
			holder = a
		case <-time.After(5 * time.Second):
			t.Fatalf("no waiter got the slot released %d; got %v", i, got)
		}
	}
	want := []string{"carol", "alice", "bob", "alice", "alice"}
	if !slices.Equal(got, want) {
		t.Errorf("slots went to %v, want %v", got, want)
	}
	s.Release(holder)
	if err := s.Acquire(ctx, "erin", Batch); err != nil { // free again, at once
		t.Fatal(err)
	}
}

// A freed slot goes to the waiting agent that holds the fewest, whoever's
// turn it is: max-min fairness between a flood and a quiet agent.
func TestSlotsGoToTheAgentHoldingFewest(t *testing.T) {
	s := NewSlots(4)
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		if err := s.Acquire(ctx, "flood", Normal); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan string, 8)
	// The flood queues two more calls, then the quiet agent two, in that order.
	for i, a := range []string{"flood", "flood", "quiet", "quiet"} {
		go func() {
			if s.Acquire(ctx, a, Normal) == nil {
				got <- a
			}
		}()
		waitersAre(t, s, i+1)
	}
	var order []string
	for i := 0; i < 4; i++ {
		s.Release("flood")
		select {
		case a := <-got:
			order = append(order, a)
		case <-time.After(5 * time.Second):
			t.Fatalf("release %d handed nothing; got %v", i, order)
		}
	}
	// quiet holds 0 while the flood holds 3: quiet twice, then the flood.
	if want := []string{"quiet", "quiet", "flood", "flood"}; !slices.Equal(order, want) {
		t.Errorf("slots went to %v, want %v", order, want)
	}
}

// waitersAre waits until s has n callers waiting for a slot, or fails after 5 s.
func waitersAre(t *testing.T, s *Slots, n int) {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for s.waiting.Len() != n {
		select {
		case <-deadline.C:
			t.Fatalf("%d waiters, want %d", s.waiting.Len(), n)
		case <-tick.C:
		}
	}
}
