package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/cmd/internal/service"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
)

func newPublishCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Publish one thought and wait for JetStream to store it",
		Long: `Publish a thought on noesis.thoughts.<agent_id> with Nats-Msg-Id = event_id,
and wait for JetStream's acknowledgement. The thought comes from flags
(--agent and --text), or as JSON from --file or standard input (--file -).
A missing event_id is generated. The thought is validated before it is sent.
When NOESIS_THOUGHTS is full the thought is refused: "noesis is full", exit 1.`,
		Example: `  noesis publish --agent daimon-1 --text "I will delete the stale backups" --depth 4
  echo '{"event_id":"e1","agent_id":"daimon-1","content":{"user_input":"hello"}}' | noesis publish --file -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cli.LoadConfig(cmd)
			if err != nil {
				return err
			}
			t, err := thoughtFromFlags(cmd)
			if err != nil {
				return err
			}
			data, err := json.Marshal(t)
			if err != nil {
				return err
			}
			if _, err := pipeline.DecodeThought(data, cfg.MaxThoughtBytes); err != nil {
				return err
			}
			// The agent's own inbox prefix: under per-agent permissions it may
			// read only _INBOX_<agent_id>.>, where its acknowledgement comes.
			nc, js, err := service.Connect(cfg, "noesis-publish", nats.CustomInboxPrefix(AgentInboxPrefix(t.AgentID)))
			if err != nil {
				return err
			}
			defer nc.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			// No Nats-Msg-Id: the thoughts stream deduplicates none (outputs are
			// deduplicated by the thought's digest), and the stream's last
			// message id can be read by any agent (docs/security.md).
			ack, err := js.Publish(ctx, consumers.ThoughtSubject(t.AgentID), data)
			if err := consumers.PublishError(consumers.StreamThoughts, err); errors.Is(err, consumers.ErrStreamFull) {
				return fmt.Errorf("%w: thought %s not stored; publish it again once older thoughts have aged out (NOESIS_STREAM_MAX_AGE) or an operator has made room (docs/operations.md, \"When a stream is full\")", err, t.EventID)
			}
			if err != nil {
				return fmt.Errorf("publish: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published event_id=%s subject=%s stream=%s seq=%d duplicate=%t\n",
				t.EventID, consumers.ThoughtSubject(t.AgentID), ack.Stream, ack.Sequence, ack.Duplicate)
			return nil
		},
	}
	f := cmd.Flags()
	f.String("file", "", "read the thought's JSON from this file ('-' for standard input)")
	f.String("agent", "", "agent_id")
	f.String("text", "", "content.user_input")
	f.String("event-id", "", "event_id (default: a new UUID)")
	f.Int("depth", 0, "content.depth, 1-5")
	f.Float64("coherence", -1, "coherence, 0-1")
	f.String("action", "", "the action the agent took or will take")
	f.String("outcome", "", "the action's outcome")
	f.StringSlice("stages", nil, "stages to run: narrative, tribunal, analysis (default narrative,tribunal, plus analysis at depth >= 4)")
	return cmd
}

func thoughtFromFlags(cmd *cobra.Command) (pipeline.Thought, error) {
	f := cmd.Flags()
	var t pipeline.Thought
	if file, _ := f.GetString("file"); file != "" {
		var r io.Reader = cmd.InOrStdin()
		if file != "-" {
			fh, err := os.Open(file)
			if err != nil {
				return t, err
			}
			defer fh.Close()
			r = fh
		}
		if err := json.NewDecoder(io.LimitReader(r, 16<<20)).Decode(&t); err != nil {
			return t, fmt.Errorf("read thought JSON: %w", err)
		}
	}
	str := func(name string, dst *string) {
		if f.Changed(name) {
			*dst, _ = f.GetString(name)
		}
	}
	str("agent", &t.AgentID)
	str("text", &t.Content.UserInput)
	str("event-id", &t.EventID)
	str("action", &t.Action)
	str("outcome", &t.Outcome)
	if f.Changed("depth") {
		t.Content.Depth, _ = f.GetInt("depth")
	}
	if f.Changed("coherence") {
		c, _ := f.GetFloat64("coherence")
		t.Coherence = &c
	}
	if f.Changed("stages") {
		names, _ := f.GetStringSlice("stages")
		t.Stages = nil
		for _, n := range names {
			t.Stages = append(t.Stages, pipeline.Stage(n))
		}
	}
	if t.EventID == "" {
		t.EventID = uuid.NewString()
	}
	if t.Timestamp == nil {
		now := time.Now().UTC()
		t.Timestamp = &now
	}
	return t, nil
}
