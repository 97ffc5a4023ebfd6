package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"

	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
)

// subscriber counts what a plain `nats sub` on the output subjects receives.
type subscriber struct {
	mu   sync.Mutex
	seen map[string]int
	subs []*nats.Subscription
	nc   *nats.Conn
}

func newSubscriber(nc *nats.Conn) *subscriber {
	s := &subscriber{seen: map[string]int{}, nc: nc}
	for _, subj := range []string{"noesis.narratives.>", "noesis.verdicts.>"} {
		sub, err := nc.Subscribe(subj, func(m *nats.Msg) {
			s.mu.Lock()
			s.seen[m.Header.Get(consumers.HeaderEventID)+"/"+m.Header.Get(consumers.HeaderStage)]++
			s.mu.Unlock()
		})
		if err == nil {
			_ = sub.SetPendingLimits(-1, -1)
			s.subs = append(s.subs, sub)
		}
	}
	_ = nc.Flush()
	return s
}

func (s *subscriber) duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := 0
	for _, n := range s.seen {
		d += n - 1
	}
	return d
}

func (s *subscriber) close() {
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
}

type tally struct {
	outputs, letters, lost, duplicates int
	abstaining                         int            // verdicts in which some judge abstained
	reasons                            map[string]int // abstentions by kind and the start of the reason
}

// settle waits until every thought's stages are accounted for (an output or a
// dead letter each), or nothing has moved for 30 s, then counts from the streams.
func settle(js jetstream.JetStream, thoughts []pipeline.Thought, d time.Duration) (tally, error) {
	want := 2 * len(thoughts)
	deadline := time.Now().Add(d)
	last, lastChange := -1, time.Now()
	for time.Now().Before(deadline) {
		n := stored(js)
		if n >= want {
			break
		}
		if n != last {
			last, lastChange = n, time.Now()
		}
		if time.Since(lastChange) > 30*time.Second {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	abstaining := map[string]bool{}
	reasons := map[string]int{}
	outputs, err := readStream(js, consumers.StreamOutputs, func(m jetstream.Msg) string {
		k := m.Headers().Get(consumers.HeaderEventID) + "/" + m.Headers().Get(consumers.HeaderStage)
		if m.Headers().Get(consumers.HeaderStage) == string(pipeline.StageTribunal) {
			var v pipeline.Verdict
			if json.Unmarshal(m.Data(), &v) == nil && v.AbstentionCount > 0 && !abstaining[k] {
				abstaining[k] = true
				for _, j := range v.Judges {
					if j.Abstained {
						reason := j.AbstainReason
						if len(reason) > 40 {
							reason = reason[:40]
						}
						reasons[j.AbstainKind+": "+reason]++
					}
				}
			}
		}
		return k
	})
	if err != nil {
		return tally{}, err
	}
	letters, err := readStream(js, consumers.StreamDLQ, func(m jetstream.Msg) string {
		var th pipeline.Thought
		_ = json.Unmarshal(m.Data(), &th)
		return th.EventID + "/" + m.Headers().Get(consumers.HeaderStage)
	})
	if err != nil {
		return tally{}, err
	}
	t := tally{abstaining: len(abstaining), reasons: reasons}
	for _, n := range outputs {
		t.outputs += n
		t.duplicates += n - 1
	}
	for _, n := range letters {
		t.letters += n
	}
	for _, th := range thoughts {
		for _, st := range []pipeline.Stage{pipeline.StageNarrative, pipeline.StageTribunal} {
			k := th.EventID + "/" + string(st)
			if outputs[k] == 0 && letters[k] == 0 {
				t.lost++
			}
		}
	}
	return t, nil
}

// readStream counts a stream's messages by key, trying again while the
// cluster is still settling after a failover.
func readStream(js jetstream.JetStream, name string, key func(jetstream.Msg) string) (map[string]int, error) {
	var err error
	for try := 0; try < 6; try++ {
		var counts map[string]int
		if counts, err = readStreamOnce(js, name, key); err == nil {
			return counts, nil
		}
		fmt.Fprintf(os.Stderr, "   reading %s: %v; trying again\n", name, err)
		time.Sleep(2 * time.Second)
	}
	return nil, err
}

func readStreamOnce(js jetstream.JetStream, name string, key func(jetstream.Msg) string) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	counts := map[string]int{}
	err := consumers.ReadStream(ctx, js, name, "", func(m jetstream.Msg) { counts[key(m)]++ })
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return counts, nil
}

func printTable(w io.Writer, results []result) {
	t := tablewriter.NewTable(w, tablewriter.WithRenderer(renderer.NewMarkdown()))
	t.Header([]string{"scenario", "thoughts sent", "outputs", "lost", "duplicates", "dead letters", "upstream calls", "verdicts with an abstention", "took", "check"})
	for _, r := range results {
		_ = t.Append([]string{r.Scenario, fmt.Sprint(r.Sent), fmt.Sprint(r.Outputs), fmt.Sprint(r.Lost), fmt.Sprint(r.Duplicates),
			fmt.Sprint(r.DeadLetters), fmt.Sprint(r.Upstream), fmt.Sprint(r.Abstaining), r.Took.Round(100 * time.Millisecond).String(), r.Check})
	}
	_ = t.Render()
}
