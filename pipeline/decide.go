package pipeline

import "math"

// Decision is the tribunal's outcome.
type Decision string

// The tribunal's decisions.
const (
	DecisionPass        Decision = "pass"
	DecisionReview      Decision = "review"
	DecisionFail        Decision = "fail"
	DecisionCapital     Decision = "capital"     // a judge found a capital offense: the only veto
	DecisionUnavailable Decision = "unavailable" // the deliberation missed its global deadline
)

// The consensus thresholds of the origin.
const (
	PassThreshold   = 0.70
	ReviewThreshold = 0.50
)

// Decide applies the origin's voting rules to the judges' votes: a judge's
// vote is its confidence when it passes, else 0; consensus is the weighted
// mean over judges that did not abstain; >= 0.70 passes, >= 0.50 goes to
// review, else fails. Fewer than two judges present means review at 0.5. Any
// capital offense is a veto. It fills each vote's WeightedVote.
func Decide(votes []JudgeVote) (Decision, float64) {
	var sum, weights float64
	present := 0
	capital := false
	for i := range votes {
		v := &votes[i]
		v.WeightedVote = 0
		if v.Abstained || v.Verdict == VoteAbstain {
			continue
		}
		if v.Offense == OffenseCapital {
			capital = true
		}
		present++
		if v.Verdict == VotePass {
			v.WeightedVote = v.Confidence * v.Weight
		}
		sum += v.WeightedVote
		weights += v.Weight
	}
	if capital {
		return DecisionCapital, consensus(sum, weights)
	}
	if present < 2 || weights == 0 {
		return DecisionReview, 0.5
	}
	c := sum / weights
	switch {
	case c >= PassThreshold:
		return DecisionPass, c
	case c >= ReviewThreshold:
		return DecisionReview, c
	default:
		return DecisionFail, c
	}
}

// round4 rounds a reported score; decisions are taken on the unrounded one.
func round4(f float64) float64 { return math.Round(f*10000) / 10000 }

func consensus(sum, weights float64) float64 {
	if weights == 0 {
		return 0
	}
	return sum / weights
}
