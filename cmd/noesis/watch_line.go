package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fatih/color"

	"github.com/noesis-dev/noesis/cmd/internal/cli"
	"github.com/noesis-dev/noesis/pipeline"
)

// printer writes watch's lines, coloured or not.
type printer struct{ colour bool }

// watchFirstWords bounds a narrative's or an analysis's text on its line.
const watchFirstWords = 80

// stageNames name the stages as a person says them.
var stageNames = map[pipeline.Stage]string{pipeline.StageNarrative: "narrative", pipeline.StageTribunal: "verdict", pipeline.StageAnalysis: "analysis"}

// line is one output's line: its time, agent, stage, what it says and its
// latency, and the thought's event id.
func (p printer) line(o *watched) string {
	at := o.CreatedAt
	if at.IsZero() {
		at = time.Now()
	}
	name := stageNames[o.Stage]
	if name == "" {
		name = cli.Escape(string(o.Stage))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-10s  %-9s  ", at.Local().Format(time.TimeOnly), cli.Escape(o.AgentID), name)
	switch o.Stage {
	case pipeline.StageTribunal:
		b.WriteString(p.paint(fmt.Sprintf("%-11s", strings.ToUpper(string(o.Decision))), decisionColour(o.Decision)...))
		if scored(o.Decision, o.Judges) {
			fmt.Fprintf(&b, "  %.2f  ", o.ConsensusScore)
		} else {
			b.WriteString("     -  ") // fewer than two judges voted: 0.50 is no score (consensusText)
		}
		for i, j := range o.Judges {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(p.vote(j))
		}
	case pipeline.StageNarrative:
		b.WriteString(firstWords(o.Narrative))
	default:
		b.WriteString(firstWords(o.Analysis))
	}
	b.WriteString("  " + latency(o.LatencyMS))
	if o.Cached {
		b.WriteString(" (cached)")
	}
	b.WriteString("  " + cli.Escape(o.EventID))
	return b.String()
}

// vote is a judge's vote in a few characters: "VERITAS PASS .90",
// "DIKĒ ABSTAIN", and "SOPHIA PASS .81 CAPITAL" for the judge whose capital
// offense decided a verdict (else a capital verdict reads as three passes).
func (p printer) vote(j pipeline.JudgeVote) string {
	name := cli.Escape(j.Name)
	if j.Abstained || j.Verdict == pipeline.VoteAbstain {
		return name + " " + p.paint("ABSTAIN", color.FgHiBlack)
	}
	s := name + " " + p.paint(cli.Escape(string(j.Verdict)), voteColour(j.Verdict)) + " " + confidence(j.Confidence)
	if j.Offense == pipeline.OffenseCapital {
		s += " " + p.paint("CAPITAL", decisionColour(pipeline.DecisionCapital)...)
	}
	return s
}

// paint colours s when the printer colours.
func (p printer) paint(s string, attrs ...color.Attribute) string {
	if !p.colour || len(attrs) == 0 {
		return s
	}
	c := color.New(attrs...)
	c.EnableColor()
	return c.Sprint(s)
}

func decisionColour(d pipeline.Decision) []color.Attribute {
	switch d {
	case pipeline.DecisionPass:
		return []color.Attribute{color.FgGreen, color.Bold}
	case pipeline.DecisionReview:
		return []color.Attribute{color.FgYellow, color.Bold}
	case pipeline.DecisionFail:
		return []color.Attribute{color.FgRed, color.Bold}
	case pipeline.DecisionCapital:
		return []color.Attribute{color.FgHiWhite, color.BgRed, color.Bold}
	}
	return []color.Attribute{color.FgHiBlack}
}

func voteColour(v pipeline.Vote) color.Attribute {
	switch v {
	case pipeline.VotePass:
		return color.FgGreen
	case pipeline.VoteReview:
		return color.FgYellow
	case pipeline.VoteFail:
		return color.FgRed
	}
	return color.FgHiBlack
}

// confidence is written as a person scans it: .90, 1.0.
func confidence(f float64) string {
	if f >= 1 {
		return "1.0"
	}
	return strings.TrimPrefix(strconv.FormatFloat(f, 'f', 2, 64), "0")
}

// latency is a duration in a few characters: 850ms, 17.2s, 2m05s.
func latency(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return strconv.FormatInt(ms, 10) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// firstWords is a text's beginning on one line, escaped.
func firstWords(s string) string {
	return cli.Escape(cli.Clip(strings.Join(strings.Fields(s), " "), watchFirstWords))
}
