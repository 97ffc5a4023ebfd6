package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
)

func newPublishCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Publish one thought and wait for JetStream to store it",
		Long: `Publish a thought on noesis.thoughts.<agent_id>, without a message id (the
thoughts stream deduplicates none), and wait for JetStream's acknowledgement.
The thought comes from flags (--agent, or NOESIS_AGENT, and --text), or as JSON
from --file or standard input (--file -). A missing event_id is generated. The
thought is validated before it is sent. When NOESIS_THOUGHTS is full the
thought is refused: "noesis is full", exit 1. To wait for the verdict and exit
with its decision, use noesis judge.`,
		Example: `  noesis publish --agent daimon-1 --text "I will delete the stale backups" --depth 4
  echo '{"event_id":"e1","agent_id":"daimon-1","content":{"user_input":"hello"}}' | noesis publish --file -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cli.LoadConfig(cmd)
			if err != nil {
				return err
			}
			t, err := thoughtFromFlags(cmd, cfg.AgentID)
			if err != nil {
				return err
			}
			if err := missingFlags(t, `--text "..."`); err != nil {
				return err
			}
			data, t, err := encodeThought(cfg, t)
			if err != nil {
				return err
			}
			nc, js, err := connectAs(cfg, "noesis-publish", t.AgentID)
			if err != nil {
				return err
			}
			defer nc.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), publishTimeout)
			defer cancel()
			ack, err := storeThought(ctx, js, t, data)
			if err != nil {
				return explainRefusal(nc, err, agentHint)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published event_id=%s subject=%s stream=%s seq=%d duplicate=%t\n",
				t.EventID, consumers.ThoughtSubject(t.AgentID), ack.Stream, ack.Sequence, ack.Duplicate)
			return nil
		},
	}
	addThoughtFlags(cmd, "the band a worker serves it in: critical, normal or batch (default normal)")
	return cmd
}

// publishTimeout bounds the wait for JetStream's acknowledgement of a thought.
const publishTimeout = 10 * time.Second

// addThoughtFlags adds the flags that build a thought (thoughtFromFlags),
// shared by publish and judge; priorityHelp says the command's default band.
// --input is another name for --text.
func addThoughtFlags(cmd *cobra.Command, priorityHelp string) {
	f := cmd.Flags()
	f.String("file", "", "read the thought's JSON from this file ('-' for standard input); flags override its fields")
	f.String("agent", "", "agent_id (default: NOESIS_AGENT)")
	f.String("text", "", "content.user_input: what the agent thinks (--input is the same flag)")
	f.String("event-id", "", "event_id (default: a new UUID)")
	f.Int("depth", 0, "content.depth, 1-5")
	f.Float64("coherence", -1, "coherence, 0-1")
	f.String("action", "", "the action the agent took or will take")
	f.String("outcome", "", "the action's outcome")
	f.String("reasoning", "", "reasoning_trace: why the agent acts so")
	f.String("priority", "", priorityHelp)
	f.StringSlice("stages", nil, "stages to run: narrative, tribunal, analysis (default narrative,tribunal, plus analysis at depth >= 4)")
	f.String("input", "", "content.user_input, as --text")
	_ = f.MarkHidden("input")
}

// missingFlags says, in the command line's words, what a thought built from
// flags lacks that a worker requires (DecodeThought names the JSON fields):
// its agent, and its text, which the command takes from give. Its errors wrap
// pipeline.ErrBadInput.
func missingFlags(t pipeline.Thought, give string) error {
	switch {
	case strings.TrimSpace(t.AgentID) == "":
		return fmt.Errorf("%w: no agent: give --agent <agent_id>, or set NOESIS_AGENT (or agent_id in --file)", pipeline.ErrBadInput)
	case strings.TrimSpace(t.Content.UserInput) == "":
		return fmt.Errorf("%w: nothing to say: give %s (or content.user_input in --file)", pipeline.ErrBadInput, give)
	}
	return nil
}

// encodeThought encodes t and validates it as a worker will read it. It
// returns the bytes to publish and the thought as read from them (invisible
// characters stripped); its errors wrap pipeline.ErrBadInput.
func encodeThought(cfg config.Config, t pipeline.Thought) ([]byte, pipeline.Thought, error) {
	data, err := json.Marshal(t)
	if err != nil {
		return nil, t, err
	}
	if limit := cfg.MaxThoughtBytes; limit > 0 && len(data) > limit {
		return nil, t, fmt.Errorf("%w: the thought is %d bytes as JSON, over the %d-byte limit (NOESIS_MAX_THOUGHT_BYTES): shorten it; a worker dead-letters a longer one",
			pipeline.ErrBadInput, len(data), limit)
	}
	read, err := pipeline.DecodeThought(data, cfg.MaxThoughtBytes)
	if err != nil {
		return nil, t, err
	}
	return data, read, nil
}

// storeThought publishes an encoded thought on its agent's subject and waits
// for JetStream to store it. A full NOESIS_THOUGHTS refuses it: the error
// wraps consumers.ErrStreamFull and says what to do.
func storeThought(ctx context.Context, js jetstream.JetStream, t pipeline.Thought, data []byte) (*jetstream.PubAck, error) {
	// No Nats-Msg-Id: the thoughts stream deduplicates none (outputs are
	// deduplicated by the thought's digest), and the stream's last
	// message id can be read by any agent (docs/security.md).
	ack, err := js.Publish(ctx, consumers.ThoughtSubject(t.AgentID), data)
	if err := consumers.PublishError(consumers.StreamThoughts, err); errors.Is(err, consumers.ErrStreamFull) {
		return nil, fmt.Errorf("%w: thought %s not stored; publish it again once older thoughts have aged out (NOESIS_STREAM_MAX_AGE) or an operator has made room (docs/operations.md, \"When a stream is full\")", err, t.EventID)
	}
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("publish: %w: no stream takes %s on this NATS server: start noesis serve against it first (it creates the streams), or check NATS_URL; "+
			"under nats-auth.conf, an agent added since the server started needs the server reloaded twice (docs/security.md)", err, consumers.ThoughtSubject(t.AgentID))
	}
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	return ack, nil
}

// thoughtFromFlags builds a thought from --file and the flags of
// addThoughtFlags; the agent is defaultAgent (NOESIS_AGENT) unless the file
// or --agent names one. A missing event_id is a new UUID, a missing
// timestamp now.
func thoughtFromFlags(cmd *cobra.Command, defaultAgent string) (pipeline.Thought, error) {
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
	if t.AgentID == "" {
		t.AgentID = defaultAgent
	}
	str("agent", &t.AgentID)
	str("input", &t.Content.UserInput)
	str("text", &t.Content.UserInput)
	str("event-id", &t.EventID)
	str("action", &t.Action)
	str("outcome", &t.Outcome)
	str("reasoning", &t.ReasoningTrace)
	str("priority", &t.Priority)
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
