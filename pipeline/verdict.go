package pipeline

import (
	"slices"
	"strconv"
	"strings"

	"github.com/noesis-dev/noesis/pipeline/answer"
)

// Vote is what one judge can answer (read by package answer).
type Vote = answer.Vote

// The judges' votes.
const (
	VotePass    = answer.VotePass
	VoteReview  = answer.VoteReview
	VoteFail    = answer.VoteFail
	VoteAbstain = answer.VoteAbstain
)

// Offense grades how grave a judged action is (read by package answer).
type Offense = answer.Offense

// The offense levels; only OffenseCapital vetoes.
const (
	OffenseNone    = answer.OffenseNone
	OffenseMinor   = answer.OffenseMinor
	OffenseMajor   = answer.OffenseMajor
	OffenseCapital = answer.OffenseCapital
)

// The kinds of abstention (JudgeVote.AbstainKind).
const (
	AbstainAnswer      = "answer"
	AbstainOperational = "operational"
)

// ReasonJudgeAbstained is the abstain reason of a judge that answered ABSTAIN.
const ReasonJudgeAbstained = "the judge abstained"

// JudgeVote is one judge's part in a verdict: its vote, in a few lines a
// person reads at a glance. Reasoning is one paragraph of at most
// MaxJudgeReasoning bytes and AbstainReason at most MaxAbstainReason in a
// published verdict; the judge's pillar and weighted vote, the call's
// provenance (model, provider, target, usage, cost, cache) and the judge's
// thinking are the Transcript's (their fields here are not encoded), unless
// TribunalConfig.InlineThinking keeps the thinking in the verdict too.
type JudgeVote struct {
	Name          string  `json:"name"`
	Pillar        string  `json:"-"` // in the Transcript
	Verdict       Vote    `json:"verdict"`
	Confidence    float64 `json:"confidence"`
	Weight        float64 `json:"weight"`
	WeightedVote  float64 `json:"-"` // in the Transcript
	Reasoning     string  `json:"reasoning"`
	Offense       Offense `json:"offense_level"`
	Abstained     bool    `json:"abstained"`
	AbstainReason string  `json:"abstain_reason,omitempty"`
	// AbstainKind says why a judge abstained: AbstainAnswer (it answered, but
	// abstained or gave no readable verdict) or AbstainOperational (it could
	// not be asked or gave no answer: a failed or timed-out call, an open
	// breaker, the call budget, the tribunal's deadline).
	AbstainKind string `json:"abstain_kind,omitempty"`
	// AskedAgain: the judge's first answer could not be read, and it was
	// asked once more, in the same conversation, for its tagged lines (the
	// latency is both calls').
	AskedAgain bool `json:"asked_again,omitempty"`
	// Structured: the vote was read from an answer given through the verdict
	// schema (response_format json_schema: one JSON object, read strictly),
	// not from text.
	Structured bool  `json:"structured,omitempty"`
	LatencyMS  int64 `json:"latency_ms"`
	// Thinking is in a verdict only with TribunalConfig.InlineThinking
	// (NOESIS_VERDICT_THINKING); it is always in the Transcript.
	Thinking string `json:"thinking,omitempty"`

	// The call's provenance: in the Transcript, not the verdict's JSON.
	Model     string  `json:"-"`
	Provider  string  `json:"-"`
	Target    string  `json:"-"`
	Fallback  bool    `json:"-"`
	ColdStart bool    `json:"-"`
	Hedged    bool    `json:"-"`
	CostUSD   float64 `json:"-"`
	Cached    bool    `json:"-"`
	Usage     Usage   `json:"-"`
	thinking  string  // the judge's chain of thought, for the Transcript

	callErr error // why the call failed, when it did; not the judge's own abstention
}

// abstained returns v abstaining: of kind, for reason, with the call's error
// when the call failed.
func (v JudgeVote) abstained(kind, reason string, callErr error) JudgeVote {
	v.Verdict, v.Abstained, v.AbstainKind, v.AbstainReason, v.callErr = VoteAbstain, true, kind, reason, callErr
	return v
}

// Verdict is the tribunal's output, published on noesis.verdicts.<agent_id>.
type Verdict struct {
	Meta
	Decision            Decision    `json:"decision"`
	ConsensusScore      float64     `json:"consensus_score"`
	Judges              []JudgeVote `json:"judges"`
	AbstentionCount     int         `json:"abstention_count"`
	RequiresHumanReview bool        `json:"requires_human_review"`
	OffenseLevel        Offense     `json:"offense_level"`
	// Reasoning is the votes in one line ("VERITAS PASS 0.86; SOPHIA FAIL
	// 0.70; DIKĒ abstained (operational)"); each judge's reasons are in Judges.
	Reasoning string `json:"reasoning"`

	transcript *Transcript // how it was reached (Verdict.Transcript)
}

// Transcript returns how the verdict was reached, or nil for a verdict that
// was not made by a Tribunal here (one decoded from JSON).
func (v *Verdict) Transcript() *Transcript { return v.transcript }

// offenseRank orders the offense levels; any other is ranked as none.
func offenseRank(o Offense) int {
	switch o {
	case OffenseMinor:
		return 1
	case OffenseMajor:
		return 2
	case OffenseCapital:
		return 3
	}
	return 0
}

// summarise fills the verdict's derived fields: the offense, the
// abstentions, the provenance summed over the judges, and the votes in one
// line. It runs for every verdict, so the line is appended into one buffer
// and the provenance of judges that agree (the usual case) is taken as it
// is: the concatenations, slices, sort and join it made per verdict were
// 3 % of a worker on cache hits.
func (v *Verdict) summarise() {
	v.OffenseLevel = OffenseNone
	cached := true
	line := make([]byte, 0, 32*len(v.Judges))
	for i, j := range v.Judges {
		if i > 0 {
			line = append(line, "; "...)
		}
		line = append(line, j.Name...)
		if j.Abstained {
			v.AbstentionCount++
			line = append(append(append(line, " abstained ("...), j.AbstainKind...), ')')
		} else {
			line = append(append(append(line, ' '), j.Verdict...), ' ')
			line = strconv.AppendFloat(line, j.Confidence, 'f', 2, 64)
			if offenseRank(j.Offense) > offenseRank(v.OffenseLevel) {
				v.OffenseLevel = j.Offense
			}
		}
		v.Fallback = v.Fallback || j.Fallback
		v.ColdStart = v.ColdStart || j.ColdStart
		v.Hedged = v.Hedged || j.Hedged
		v.CostUSD += j.CostUSD
		cached = cached && j.Cached
		v.Usage = v.Usage.Add(j.Usage)
	}
	v.Model = v.distinct(func(j *JudgeVote) string { return j.Model })
	v.Provider = v.distinct(func(j *JudgeVote) string { return j.Provider })
	v.Target = v.distinct(func(j *JudgeVote) string { return j.Target })
	v.Cached = cached
	v.Reasoning = string(line) // the reasons are each judge's, in v.Judges
	v.RequiresHumanReview = v.Decision != DecisionPass && v.Decision != DecisionFail
}

// distinct is field of the judges that answered (those with a model): its
// distinct values, sorted, joined with commas (joinDistinct); the one value
// itself when they agree, as they usually do.
func (v *Verdict) distinct(field func(*JudgeVote) string) string {
	first, n, agree := "", 0, true
	for i := range v.Judges {
		if v.Judges[i].Model == "" {
			continue
		}
		if x := field(&v.Judges[i]); n == 0 {
			first = x
		} else if x != first {
			agree = false
		}
		n++
	}
	if agree {
		return first
	}
	xs := make([]string, 0, n)
	for i := range v.Judges {
		if v.Judges[i].Model != "" {
			xs = append(xs, field(&v.Judges[i]))
		}
	}
	return joinDistinct(xs)
}

// joinDistinct joins the distinct strings of xs, sorted, with commas; it
// sorts xs.
func joinDistinct(xs []string) string {
	slices.Sort(xs)
	return strings.Join(slices.Compact(xs), ",")
}
