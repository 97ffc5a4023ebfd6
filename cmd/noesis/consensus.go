package main

import (
	"fmt"

	"github.com/noesis-dev/noesis/pipeline"
)

// voted counts the judges that voted: those that did not abstain.
func voted(judges []pipeline.JudgeVote) int {
	n := 0
	for _, j := range judges {
		if !j.Abstained && j.Verdict != pipeline.VoteAbstain {
			n++
		}
	}
	return n
}

// scored reports whether a verdict's consensus_score is a score of votes: a
// verdict with fewer than two judges voting carries 0.5 (pipeline.Decide),
// which no judge gave, unless a judge's capital offense decided it.
func scored(d pipeline.Decision, judges []pipeline.JudgeVote) bool {
	return d == pipeline.DecisionCapital || voted(judges) >= 2
}

// consensusText is a verdict's consensus as a person reads it beside the
// decision: the score and what it decides (or that something else did), or,
// when fewer than two judges voted, that there is no score. Without it, three
// PASS votes under "review", or 0.50 where no judge voted, read as a mistake.
func consensusText(d pipeline.Decision, score float64, judges []pipeline.JudgeVote) string {
	if !scored(d, judges) {
		return fmt.Sprintf("consensus none (%d of %d judges voted; a score needs 2)", voted(judges), len(judges))
	}
	s := fmt.Sprintf("consensus %.4f", score)
	switch d {
	case pipeline.DecisionCapital:
		return s + " (not counted: a capital offense is a veto)"
	case pipeline.DecisionUnavailable:
		return s + " (not counted: the deliberation missed its deadline)"
	}
	return s + fmt.Sprintf(" (pass at %.2f, review at %.2f)", pipeline.PassThreshold, pipeline.ReviewThreshold)
}
