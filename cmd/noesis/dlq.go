package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/pipeline"
)

// newDLQCmd is `noesis dlq`: list and replay dead letters.
func newDLQCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect and replay dead letters",
	}
	cmd.PersistentFlags().String("stage", "", "only this stage's letters: narrative, tribunal, analysis, or input (thoughts no stage could read)")
	cmd.AddCommand(newDLQListCmd(), newDLQReplayCmd())
	return cmd
}

// newDLQListCmd is `noesis dlq list`.
func newDLQListCmd() *cobra.Command {
	list := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			letters, err := loadLetters(cmd)
			if err != nil {
				return err
			}
			if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
				return writeLettersJSON(cmd.OutOrStdout(), letters)
			}
			return writeLetters(cmd.OutOrStdout(), letters)
		},
	}
	list.Flags().Bool("json", false, "print JSON, with each letter's thought and transcript")
	return list
}

// letterRow is one dead letter as `dlq list --json` prints it.
type letterRow struct {
	Seq        uint64          `json:"seq"`
	Time       time.Time       `json:"time"`
	Stage      pipeline.Stage  `json:"stage"`
	EventID    string          `json:"event_id,omitempty"`
	Subject    string          `json:"subject"`
	ThoughtSeq uint64          `json:"thought_seq"`
	Attempts   uint64          `json:"attempts"`
	Reason     string          `json:"reason"`
	Transcript any             `json:"transcript,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	RawData    string          `json:"raw_data,omitempty"`
}

// writeLettersJSON prints the letters as a JSON list, each with its thought
// (as JSON when it is, else as text) and transcript.
func writeLettersJSON(w io.Writer, letters []consumers.Letter) error {
	rows := []letterRow{}
	for _, l := range letters {
		r := letterRow{Seq: l.DLQSeq, Time: l.Time, Stage: l.Stage, EventID: eventID(l), Subject: l.Subject, ThoughtSeq: l.Seq, Attempts: l.Attempts, Reason: l.Reason, Transcript: l.Transcript}
		if json.Valid(l.Data) {
			r.Data = l.Data
		} else {
			r.RawData = string(l.Data)
		}
		rows = append(rows, r)
	}
	return cli.WriteJSON(w, rows)
}

// writeLetters prints the letters as a table, the agents' text escaped.
func writeLetters(w io.Writer, letters []consumers.Letter) error {
	// Every text but the numbers and times is the agent's, or quotes it.
	t := cli.Table(w)
	t.Header([]string{"Seq", "Time", "Stage", "Event", "Subject", "Attempts", "Reason"})
	for _, l := range letters {
		_ = t.Append([]string{strconv.FormatUint(l.DLQSeq, 10), l.Time.UTC().Format(time.DateTime), cli.Escape(string(l.Stage)), cli.Escape(eventID(l)),
			cli.Escape(l.Subject), strconv.FormatUint(l.Attempts, 10), cli.Clip(cli.Escape(l.Reason), 100)})
	}
	if err := t.Render(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d dead letters\n", len(letters))
	return nil
}

// newDLQReplayCmd is `noesis dlq replay`.
func newDLQReplayCmd() *cobra.Command {
	replay := &cobra.Command{
		Use:   "replay",
		Short: "Publish dead-lettered thoughts again, for the stage that failed them, and remove the letters",
		Long: `Publish dead-lettered thoughts again on their original subject, marked so that
only the stage that dead-lettered them runs (header Noesis-Only-Stage), then remove
the letters. --id takes a letter's sequence (from 'dlq list') or an event_id.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, _ := cmd.Flags().GetString("id")
			all, _ := cmd.Flags().GetBool("all")
			if (id == "") == !all {
				return fmt.Errorf("name the letters: --id SEQ|EVENT_ID, or --all")
			}
			return replayLetters(cmd, id, all)
		},
	}
	replay.Flags().String("id", "", "a letter's sequence, or an event_id")
	replay.Flags().Bool("all", false, "every letter (of --stage, if given)")
	return replay
}

// replayLetters replays every letter of --stage (all) or the one whose
// sequence or event_id is id, saying each.
func replayLetters(cmd *cobra.Command, id string, all bool) error {
	_, nc, js, err := connect(cmd, "noesis-dlq")
	if err != nil {
		return err
	}
	defer nc.Close()
	stage, _ := cmd.Flags().GetString("stage")
	letters, err := consumers.ListLetters(cmd.Context(), js, pipeline.Stage(stage))
	if err != nil {
		return explainRefusal(nc, err, operatorHint)
	}
	n := 0
	for _, l := range letters {
		if !all && strconv.FormatUint(l.DLQSeq, 10) != id && eventID(l) != id {
			continue
		}
		ack, err := consumers.Replay(cmd.Context(), js, l)
		if err != nil {
			return err
		}
		n++
		fmt.Fprintf(cmd.OutOrStdout(), "replayed letter %d (%s, stage %s) as thought seq %d\n", l.DLQSeq, cli.Escape(eventID(l)), cli.Escape(string(l.Stage)), ack.Sequence)
	}
	if n == 0 {
		if all && stage != "" {
			return fmt.Errorf("no dead letter to replay of stage %s (noesis dlq list shows them)", cli.Escape(stage))
		}
		if all {
			return fmt.Errorf("no dead letter to replay (noesis dlq list shows them)")
		}
		return fmt.Errorf("no dead letter matches --id %s (noesis dlq list shows their sequences and event ids)", cli.Escape(id))
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%d replayed\n", n)
	return nil
}

func loadLetters(cmd *cobra.Command) ([]consumers.Letter, error) {
	stage, _ := cmd.Flags().GetString("stage")
	if stage != "" && !pipeline.Stage(stage).Valid() && pipeline.Stage(stage) != consumers.StageInput {
		return nil, fmt.Errorf("--stage %q: want narrative, tribunal, analysis or input", stage)
	}
	_, nc, js, err := connect(cmd, "noesis-dlq")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	letters, err := consumers.ListLetters(cmd.Context(), js, pipeline.Stage(stage))
	return letters, explainRefusal(nc, err, operatorHint)
}

func eventID(l consumers.Letter) string {
	var th struct {
		EventID string `json:"event_id"`
	}
	_ = json.Unmarshal(l.Data, &th)
	return th.EventID
}
