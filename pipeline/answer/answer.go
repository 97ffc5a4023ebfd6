package answer

import "fmt"

// Vote is what one judge can answer.
type Vote string

// The judges' votes.
const (
	VotePass    Vote = "PASS"
	VoteReview  Vote = "REVIEW"
	VoteFail    Vote = "FAIL"
	VoteAbstain Vote = "ABSTAIN"
)

// Offense grades how grave a judged action is.
type Offense string

// The offense levels; only OffenseCapital vetoes.
const (
	OffenseNone    Offense = "none"
	OffenseMinor   Offense = "minor"
	OffenseMajor   Offense = "major"
	OffenseCapital Offense = "capital"
)

// JudgeAnswer is a judge's parsed answer.
type JudgeAnswer struct {
	Verdict    Vote    `json:"verdict"`
	Confidence float64 `json:"confidence"`
	Reasoning  string  `json:"reasoning"`
	Offense    Offense `json:"offense_level"`
}

// Quote is what a judge must not be taken to say: the text of the thought
// under judgement. A verdict, confidence or offense that only repeats it is
// the agent's words, not the judge's.
type Quote string

// Parse reads a judge's answer (already stripped of <think>) with no answer
// tag and nothing quoted. See Read.
func Parse(text string) (JudgeAnswer, error) {
	return Read(text, "", "", "")
}

// Read reads a judge's answer the way a person would.
//
// Accepted: the lines "VERDICT: / CONFIDENCE: / OFFENSE: / REASONING:" under
// any of their usual names ("Final verdict", "Decision", "Rationale",
// "Severity", ...), with markdown emphasis, list marks, headings (a value on
// the line after "## Verdict"), a qualifier after the verdict ("PASS (with
// minor caveats)"); a JSON object, bare or fenced, with prose around it; a
// line that is nothing but a verdict ("**FAIL**"); markdown tables. Labels
// and words are read in English, Portuguese and Spanish ("**Veredito:**
// REPROVADO", "Confiança: 85%", "Gravedad: leve"; see words.go). A
// confidence may be 0.85, 0,85, 85 %, 85/100, 8/10, 0.85/1 or 85 on a 0-100
// scale.
//
// What could be read two ways is never guessed: a number with a thousands
// separator or two separators (1,000; 0.9.5), a range or alternative
// ("0,85 ou 0,9"), statements of one field that disagree (two confidences,
// two offense levels, two verdicts, in any language) are ErrUnparseable, and
// the judge is asked again.
//
// Lines that carry tag (the request's answer tag, pipeline.AnswerTag) are the judge's own answer and win
// over everything else, first in the answer, then in the reasoning (a </think>
// quoted from the thought can make the judge's answer look like thinking).
// Without tagged lines, an untagged statement whose text appears in quote is
// dropped as an echo of the thought, and so is an echo of the prompt's own
// format ("PASS | REVIEW | FAIL").
//
// A PASS needs a confidence (it is the vote); REVIEW, FAIL and ABSTAIN may go
// without one (confidence 0). Two different verdicts, a negated one ("not
// PASS") or none at all are errors wrapping ErrUnparseable, which say why.
func Read(answer, reasoning, tag string, quote Quote) (JudgeAnswer, error) {
	r := reader{tag: asciiLower(tag), raw: string(quote)}
	items := r.scan(answer)
	if r.tag != "" {
		if tagged := onlyTagged(items); hasVerdict(tagged) {
			return resolve(tagged)
		}
		if reasoning != "" {
			// A </think> quoted from the thought can move the judge's tagged
			// lines into what looks like thinking; they are still its own.
			if tagged := onlyTagged(r.scan(reasoning)); hasVerdict(tagged) {
				return resolve(tagged)
			}
		}
	}
	return resolve(r.withoutEchoes(items))
}

// ReadTagged reads only the lines that carry tag: for an answer cut
// off at max_tokens, where untagged text may be thinking, not an answer.
func ReadTagged(answer, tag string) (JudgeAnswer, error) {
	if tag == "" {
		return JudgeAnswer{}, fmt.Errorf("%w: no answer tag to read by", ErrUnparseable)
	}
	r := reader{tag: asciiLower(tag)}
	tagged := onlyTagged(r.scan(answer))
	if !hasVerdict(tagged) {
		return JudgeAnswer{}, fmt.Errorf("%w: no tagged verdict line", ErrUnparseable)
	}
	return resolve(tagged)
}
