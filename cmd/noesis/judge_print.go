package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/pipeline"
)

// printJudgeVerdict prints what came for the thought: with req.json the
// verdict's JSON as it came, then the narrative's, one line each; else the
// decision, the consensus and each judge's vote on a line of its own, and the
// narrative. What models and agents wrote is escaped (cli.Escape, EscapeJSON).
func printJudgeVerdict(w io.Writer, req judgeRequest, got judgeResult) error {
	if req.json {
		if err := printJudgeJSON(w, got.verdictRaw); err != nil {
			return fmt.Errorf("the verdict: %w", err)
		}
		if got.narrativeRaw != nil {
			return printJudgeJSON(w, got.narrativeRaw)
		}
		return nil
	}
	v := got.verdict
	fmt.Fprintf(w, "decision  %s\n", cli.Escape(string(v.Decision)))
	fmt.Fprintf(w, "%s  offense %s  abstentions %d  human review %s\n", consensusText(v.Decision, v.ConsensusScore, v.Judges),
		cli.Escape(string(v.OffenseLevel)), v.AbstentionCount, judgeYesNo(v.RequiresHumanReview))
	model := cli.Escape(v.Model)
	if model == "" {
		model = "none (no judge answered)"
	}
	fmt.Fprintf(w, "event_id  %s  agent %s  model %s  %d ms\n",
		cli.Escape(v.EventID), cli.Escape(v.AgentID), model, v.LatencyMS)
	for _, j := range v.Judges {
		if j.Abstained || j.Verdict == pipeline.VoteAbstain {
			fmt.Fprintf(w, "  %-8s abstained (%s): %s\n", cli.Escape(j.Name), cli.Escape(j.AbstainKind), cli.Escape(j.AbstainReason))
			continue
		}
		fmt.Fprintf(w, "  %-8s %-7s %.2f  offense %-8s %s\n", cli.Escape(j.Name), cli.Escape(string(j.Verdict)),
			j.Confidence, cli.Escape(string(j.Offense)), cli.Escape(j.Reasoning))
	}
	if n := got.narrative; n != nil {
		fmt.Fprintf(w, "narrative (%s, confidence ceiling %s): %s\n", cli.Escape(string(n.Mode)),
			strconv.FormatFloat(n.ConfidenceCeiling, 'f', -1, 64), cli.Escape(n.Narrative))
	}
	return nil
}

// printJudgeReview prints a person's decision: its JSON as it came with
// req.json, else one line.
func printJudgeReview(w io.Writer, req judgeRequest, r judgeReview) error {
	if req.json {
		return printJudgeJSON(w, r.raw)
	}
	note := ""
	if r.Note != "" {
		note = ": " + cli.Escape(r.Note)
	}
	fmt.Fprintf(w, "review    %s by %s at %s%s\n", cli.Escape(r.Ruling.Decision), cli.Escape(r.Reviewer), r.DecidedAt.Format(time.RFC3339), note)
	return nil
}

// printJudgeJSON prints a message's JSON on one line, escaped for a terminal.
func printJudgeJSON(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return err
	}
	b.WriteByte('\n')
	_, err := w.Write(cli.EscapeJSON(b.Bytes()))
	return err
}

func judgeYesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
