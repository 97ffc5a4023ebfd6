package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/shared"
	"github.com/noesis-dev/noesis/pipeline"
)

// Status is what `noesis status` reports.
type Status struct {
	Time      time.Time           `json:"time"`
	Streams   []StreamStatus      `json:"streams"`
	Consumers []ConsumerStatus    `json:"consumers"`
	Workers   []shared.WorkerInfo `json:"workers"`
	// SkippedWorkers says why each entry of the workers bucket that is no
	// worker's announcement was left out of Workers.
	SkippedWorkers []string `json:"skipped_workers,omitempty"`
	// Agents: each agent's thoughts held and quota use, most thoughts first.
	Agents []shared.AgentUse `json:"agents"`
	// UnreadableCounters are shared counters that do not hold a number.
	UnreadableCounters []string         `json:"unreadable_counters,omitempty"`
	Health             consumers.Health `json:"health"`
}

// StreamStatus is one stream's state.
type StreamStatus struct {
	Name     string    `json:"name"`
	Messages uint64    `json:"messages"`
	Bytes    uint64    `json:"bytes"`
	LastSeq  uint64    `json:"last_seq"`
	LastTime time.Time `json:"last_time"`
	Replicas int       `json:"replicas"`
	Leader   string    `json:"leader,omitempty"`
}

// ConsumerStatus is one stage's durable consumer.
type ConsumerStatus struct {
	Stage        string     `json:"stage"`
	Tier         string     `json:"tier"`
	Pending      uint64     `json:"pending"`     // not yet delivered: the lag
	AckPending   int        `json:"ack_pending"` // delivered, not yet acknowledged
	Redelivered  int        `json:"redelivered"`
	Waiting      int        `json:"waiting"` // pull requests waiting: idle worker capacity
	Delivered    uint64     `json:"delivered_stream_seq"`
	AckFloor     uint64     `json:"ack_floor_stream_seq"`
	LastActivity *time.Time `json:"last_activity,omitempty"`
	Workers      int        `json:"workers"` // live processes running this stage's tier
}

func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Streams, stage consumers (lag, ack pending, redeliveries) and live workers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, _ := cmd.Flags().GetBool("json")
			watch, _ := cmd.Flags().GetDuration("watch")
			cfg, nc, js, err := connect(cmd, "noesis-status")
			if err != nil {
				return err
			}
			defer nc.Close()
			for {
				st, err := readStatus(cmd.Context(), js, cfg.LimitWindow)
				if err != nil {
					return explainRefusal(nc, err, operatorHint)
				}
				if asJSON {
					if err := cli.WriteJSON(cmd.OutOrStdout(), st); err != nil {
						return err
					}
				} else {
					if watch > 0 && cli.IsTerminal(cmd.OutOrStdout()) {
						fmt.Fprint(cmd.OutOrStdout(), "\033[H\033[2J")
					}
					if err := writeStatus(cmd.OutOrStdout(), st); err != nil {
						return err
					}
				}
				if watch <= 0 {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(watch):
				}
			}
		},
	}
	cmd.Flags().Bool("json", false, "print JSON")
	cmd.Flags().Duration("watch", 0, "refresh at this interval (for example 2s) until interrupted")
	cmd.Flags().Lookup("watch").NoOptDefVal = "2s"
	return cmd
}

func readStatus(ctx context.Context, js jetstream.JetStream, window time.Duration) (*Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st := &Status{Time: time.Now().UTC(), Health: consumers.ReadHealth(ctx, js)}
	for _, name := range []string{consumers.StreamThoughts, consumers.StreamOutputs, consumers.StreamDLQ} {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return nil, err
		}
		ss := StreamStatus{Name: name, Messages: info.State.Msgs, Bytes: info.State.Bytes, LastSeq: info.State.LastSeq, LastTime: info.State.LastTime, Replicas: info.Config.Replicas}
		if info.Cluster != nil {
			ss.Leader = info.Cluster.Leader
		}
		st.Streams = append(st.Streams, ss)
	}
	workers, skipped, err := shared.ReadWorkers(ctx, js)
	if err != nil {
		return nil, err
	}
	sort.Slice(workers, func(i, j int) bool { return workers[i].ID < workers[j].ID })
	st.Workers = workers
	for _, e := range skipped {
		st.SkippedWorkers = append(st.SkippedWorkers, e.Error())
	}
	agents, bad, err := consumers.ReadAgentUse(ctx, js, window)
	if err != nil {
		return nil, fmt.Errorf("agents: %w", err)
	}
	st.Agents = agents
	for _, e := range bad {
		st.UnreadableCounters = append(st.UnreadableCounters, e.Error())
	}
	for _, stage := range pipeline.Stages {
		c, err := js.Consumer(ctx, consumers.StreamThoughts, string(stage))
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", stage, err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			return nil, err
		}
		cs := ConsumerStatus{Stage: string(stage), Tier: string(stage.Tier()), Pending: info.NumPending, AckPending: info.NumAckPending,
			Redelivered: info.NumRedelivered, Waiting: info.NumWaiting, Delivered: info.Delivered.Stream, AckFloor: info.AckFloor.Stream, LastActivity: info.Delivered.Last}
		for _, w := range workers {
			for _, t := range w.Tiers {
				if t == string(stage.Tier()) {
					cs.Workers++
				}
			}
		}
		st.Consumers = append(st.Consumers, cs)
	}
	return st, nil
}

// writeStatus prints st as tables. Worker announcements are anyone's who
// could write to the workers bucket, so their text goes through cli.Escape.
func writeStatus(w io.Writer, st *Status) error {
	fmt.Fprintf(w, "noesis status at %s\n\n", st.Time.Format(time.DateTime))
	for _, name := range st.Health.MissingStreams {
		fmt.Fprintf(w, "STREAM MISSING: %s (a running worker sets it up again within 5 s)\n", name)
	}
	if st.Health.ReaperBacklog > 0 {
		fmt.Fprintf(w, "reaper: %d advisories waiting to become dead letters (%d tried more than once)\n", st.Health.ReaperBacklog, st.Health.ReaperRedelivered)
	}
	t := cli.Table(w)
	t.Header([]string{"stream", "messages", "bytes", "last seq", "last message", "replicas", "leader"})
	for _, s := range st.Streams {
		_ = t.Append([]string{s.Name, strconv.FormatUint(s.Messages, 10), strconv.FormatUint(s.Bytes, 10), strconv.FormatUint(s.LastSeq, 10), ago(st.Time, s.LastTime), strconv.Itoa(s.Replicas), cli.Escape(s.Leader)})
	}
	if err := t.Render(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	t = cli.Table(w)
	t.Header([]string{"stage", "tier", "pending", "ack pending", "redelivered", "waiting pulls", "workers", "last activity"})
	for _, c := range st.Consumers {
		last := "never"
		if c.LastActivity != nil {
			last = ago(st.Time, *c.LastActivity)
		}
		_ = t.Append([]string{c.Stage, c.Tier, strconv.FormatUint(c.Pending, 10), strconv.Itoa(c.AckPending), strconv.Itoa(c.Redelivered), strconv.Itoa(c.Waiting), strconv.Itoa(c.Workers), last})
	}
	if err := t.Render(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := writeAgents(w, st); err != nil {
		return err
	}
	for _, s := range st.SkippedWorkers {
		fmt.Fprintf(w, "warning: %s\n", cli.Escape(s))
	}
	t = cli.Table(w)
	t.Header([]string{"worker", "version", "tiers", "up", "in flight / limit", "judge breakers", "targets not closed", "targets paced (429s)"})
	for _, wk := range st.Workers {
		var br []string
		for j, s := range wk.Breakers { // whatever judges the worker runs
			br = append(br, j+" "+s)
		}
		sort.Strings(br)
		var open []string
		for name, state := range wk.TargetBreakers {
			if state != "closed" {
				open = append(open, name+" "+state)
			}
		}
		sort.Strings(open)
		var limits []string
		for stage, l := range wk.Limits {
			kind := "fixed"
			if l.Adaptive {
				kind = "adaptive"
			}
			limits = append(limits, fmt.Sprintf("%s %d/%d %s", stage, l.InFlight, l.Limit, kind))
		}
		sort.Strings(limits)
		var paced []string
		for name, r := range wk.Paced {
			paced = append(paced, fmt.Sprintf("%s %.0f/s", name, r))
		}
		sort.Strings(paced)
		_ = t.Append([]string{cli.Escape(wk.ID), cli.Escape(wk.Version), cli.Escape(strings.Join(wk.Tiers, ",")), st.Time.Sub(wk.Started).Round(time.Second).String(),
			cli.Escape(strings.Join(limits, ", ")), cli.Escape(strings.Join(br, ", ")), cli.Escape(strings.Join(open, ", ")), cli.Escape(strings.Join(paced, ", "))})
	}
	return t.Render()
}

// topAgents is how many agents the table shows; --json has them all.
const topAgents = 10

// writeAgents prints the agents that hold the most thoughts, with their
// use of the quotas, and a line for the rest.
func writeAgents(w io.Writer, st *Status) error {
	if len(st.Agents) == 0 {
		return nil
	}
	t := cli.Table(w)
	t.Header([]string{"agent", "thoughts held", "requests this window", "tokens this window", "usd this month"})
	for i, a := range st.Agents {
		if i == topAgents {
			break
		}
		_ = t.Append([]string{cli.Escape(a.Agent), strconv.FormatUint(a.Thoughts, 10), strconv.FormatFloat(a.Requests, 'f', 0, 64),
			strconv.FormatFloat(a.Tokens, 'f', 0, 64), strconv.FormatFloat(a.USD, 'f', 4, 64)})
	}
	if err := t.Render(); err != nil {
		return err
	}
	if more := len(st.Agents) - topAgents; more > 0 {
		fmt.Fprintf(w, "(%d more agents: noesis status --json)\n", more)
	}
	for _, s := range st.UnreadableCounters {
		fmt.Fprintf(w, "warning: %s\n", cli.Escape(s))
	}
	fmt.Fprintln(w)
	return nil
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Millisecond).String() + " ago"
}
