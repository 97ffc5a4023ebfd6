package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/cmd/internal/service"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
)

func newWatchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Show verdicts, narratives and analyses as they come, one line each",
		Long: `Watch the outputs live, one line per output, for a person:

  10:00:02  daimon-1  verdict    REVIEW  0.67  VERITAS PASS .86  SOPHIA PASS .42  DIKĒ ABSTAIN  17.2s  evt-42
  10:00:01  daimon-1  narrative  I notice I am about to delete backups; I believe they are…  1.1s  evt-42

A verdict shows its decision (in colour on a terminal; NO_COLOR or --color
never turns it off), its consensus score, each judge's vote and confidence,
its latency and the thought's event id; a narrative or an analysis, its first
words. What agents and models wrote is escaped before it reaches the terminal.
--json prints each message's JSON as it came, one per line, instead.

An agent (NATS_USER/NATS_PASSWORD or NATS_NKEY of its own account) may watch
only its own outputs: give its id with --agent. An operator (admin) watches
every agent's without --agent. --decision shows verdicts only (narratives and
analyses have no decision). The judges' thinking and calls are in each
verdict's transcript: nats sub 'noesis.transcripts.<agent_id>'.`,
		Example: `  noesis watch
  noesis watch --agent daimon-1 --decision review,fail,capital
  noesis watch --agent daimon-1 --stage tribunal --json | jq .decision`,
		Args: cobra.NoArgs,
		RunE: runWatch,
	}
	f := cmd.Flags()
	f.String("agent", "", "watch this agent's outputs only (an agent must give its own id)")
	f.StringSlice("stage", nil, "stages to show: narrative, tribunal (verdicts), analysis (default: all)")
	f.StringSlice("decision", nil, "verdicts with these decisions only: pass, review, fail, capital, unavailable")
	f.Bool("json", false, "print each message's JSON, one per line")
	f.String("color", "auto", "colour the decisions: auto (on a terminal, unless NO_COLOR is set), always or never")
	f.Int("count", 0, "stop after this many lines (0: until interrupted)")
	return cmd
}

// watchOptions are watch's flags, read and checked.
type watchOptions struct {
	agent     string
	stages    []pipeline.Stage
	decisions []pipeline.Decision
	json      bool
	colour    bool
	count     int
}

func readWatchOptions(cmd *cobra.Command) (watchOptions, error) {
	f := cmd.Flags()
	var o watchOptions
	o.agent, _ = f.GetString("agent")
	o.json, _ = f.GetBool("json")
	o.count, _ = f.GetInt("count")
	if o.agent != "" && !pipeline.ValidToken(o.agent) {
		return o, fmt.Errorf("--agent %q: want 1-128 letters, digits, '-' or '_'", cli.Escape(o.agent))
	}
	stages, _ := f.GetStringSlice("stage")
	for _, s := range stages {
		st := pipeline.Stage(strings.ToLower(strings.TrimSpace(s)))
		if st == "verdict" || st == "verdicts" {
			st = pipeline.StageTribunal
		}
		if !st.Valid() {
			return o, fmt.Errorf("--stage %q: want narrative, tribunal or analysis", cli.Escape(s))
		}
		o.stages = append(o.stages, st)
	}
	decisions, _ := f.GetStringSlice("decision")
	for _, d := range decisions {
		dec := pipeline.Decision(strings.ToLower(strings.TrimSpace(d)))
		if !slices.Contains(allDecisions, dec) {
			return o, fmt.Errorf("--decision %q: want pass, review, fail, capital or unavailable", cli.Escape(d))
		}
		o.decisions = append(o.decisions, dec)
	}
	if len(o.decisions) > 0 {
		if len(o.stages) > 0 && !slices.Contains(o.stages, pipeline.StageTribunal) {
			return o, errors.New("--decision shows verdicts only: add tribunal to --stage, or leave --stage out")
		}
		o.stages = []pipeline.Stage{pipeline.StageTribunal}
	}
	if len(o.stages) == 0 {
		o.stages = pipeline.Stages
	}
	mode, _ := f.GetString("color")
	switch mode {
	case "always":
		o.colour = true
	case "never":
	case "auto":
		o.colour = os.Getenv("NO_COLOR") == "" && cli.IsTerminal(cmd.OutOrStdout())
	default:
		return o, fmt.Errorf("--color %q: want auto, always or never", cli.Escape(mode))
	}
	return o, nil
}

var allDecisions = []pipeline.Decision{pipeline.DecisionPass, pipeline.DecisionReview, pipeline.DecisionFail, pipeline.DecisionCapital, pipeline.DecisionUnavailable}

// watchSubjects are the public subjects of the stages' outputs: one agent's,
// or every agent's.
func watchSubjects(o watchOptions) []string {
	var out []string
	for _, s := range o.stages {
		agent := o.agent
		if agent == "" {
			agent = "*"
		}
		out = append(out, consumers.OutputSubject(s, agent))
	}
	return out
}

func runWatch(cmd *cobra.Command, _ []string) error {
	o, err := readWatchOptions(cmd)
	if err != nil {
		return err
	}
	cfg, err := cli.LoadConfig(cmd)
	if err != nil {
		return err
	}
	refused := make(chan error, 1)
	opts := []nats.Option{nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case refused <- err:
		default:
		}
	})}
	if o.agent != "" {
		opts = append(opts, nats.CustomInboxPrefix(AgentInboxPrefix(o.agent)))
	}
	nc, _, err := service.Connect(cfg, "noesis-watch", opts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	msgs := make(chan *nats.Msg, 1024)
	subjects := watchSubjects(o)
	for _, subj := range subjects {
		if _, err := nc.ChanSubscribe(subj, msgs); err != nil {
			return fmt.Errorf("subscribe to %s: %w", subj, err)
		}
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "watching %s (Ctrl-C to stop)\n", strings.Join(subjects, ", "))
	return watchLoop(cmd.Context(), cmd.OutOrStdout(), o, msgs, refused, nc)
}

// watchLoop prints the messages until ctx ends, the count is reached, the
// server refuses a subscription or the connection closes.
func watchLoop(ctx context.Context, w io.Writer, o watchOptions, msgs <-chan *nats.Msg, refused <-chan error, nc *nats.Conn) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	p := printer{colour: o.colour}
	printed := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-closed:
			return errors.New("the connection to NATS was closed")
		case err := <-refused:
			if strings.Contains(err.Error(), "Permissions Violation") && o.agent == "" {
				return fmt.Errorf("%w: an agent may watch only its own outputs: noesis watch --agent <its id>", err)
			}
			return err
		case m := <-msgs:
			line, ok := watchLine(p, o, m)
			if !ok {
				continue
			}
			if _, err := io.WriteString(w, line+"\n"); err != nil {
				return err
			}
			if printed++; o.count > 0 && printed >= o.count {
				return nil
			}
		}
	}
}

// watched is what watch reads of an output.
type watched struct {
	EventID        string               `json:"event_id"`
	AgentID        string               `json:"agent_id"`
	Stage          pipeline.Stage       `json:"stage"`
	CreatedAt      time.Time            `json:"created_at"`
	LatencyMS      int64                `json:"latency_ms"`
	Cached         bool                 `json:"cached"`
	Decision       pipeline.Decision    `json:"decision"`
	ConsensusScore float64              `json:"consensus_score"`
	Judges         []pipeline.JudgeVote `json:"judges"`
	Narrative      string               `json:"narrative"`
	Analysis       string               `json:"analysis"`
}

// watchLine is m's line, or false when the filters leave it out.
func watchLine(p printer, o watchOptions, m *nats.Msg) (string, bool) {
	var out watched
	if err := json.Unmarshal(m.Data, &out); err != nil {
		return "", false // not an output; nothing to show
	}
	if len(o.decisions) > 0 && !slices.Contains(o.decisions, out.Decision) {
		return "", false
	}
	if o.json {
		return string(cli.EscapeJSON(m.Data)), true
	}
	return p.line(&out), true
}
