package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SplitThink separates a reasoning model's chain of thought from its answer.
// It removes every <think>...</think> block; a lone closing tag (models whose
// chat template opens the block for them) ends a block that began at the start;
// an unclosed opening tag makes the rest of the text reasoning. The answer and
// the reasoning are returned trimmed.
func SplitThink(content string) (answer, reasoning string) {
	const open, closeTag = "<think>", "</think>"
	var ans, think strings.Builder
	rest := content
	if i, j := strings.Index(rest, closeTag), strings.Index(rest, open); i >= 0 && (j < 0 || i < j) {
		think.WriteString(rest[:i])
		rest = rest[i+len(closeTag):]
	}
	for {
		i := strings.Index(rest, open)
		if i < 0 {
			ans.WriteString(rest)
			break
		}
		ans.WriteString(rest[:i])
		rest = rest[i+len(open):]
		j := strings.Index(rest, closeTag)
		if think.Len() > 0 {
			think.WriteString("\n")
		}
		if j < 0 {
			think.WriteString(rest)
			break
		}
		think.WriteString(rest[:j])
		rest = rest[j+len(closeTag):]
	}
	return strings.TrimSpace(ans.String()), strings.TrimSpace(think.String())
}

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

// ErrUnparseable marks a model answer that is in none of the accepted shapes.
// A judge whose answer is unparseable abstains.
var ErrUnparseable = errors.New("unparseable answer")

// ParseJudgeAnswer reads a judge's answer (already stripped of <think>). It
// accepts a JSON object {"verdict","confidence","reasoning","offense_level"},
// bare or in a ```json fence, and the documented line format
// "VERDICT: PASS / CONFIDENCE: 0.95 / REASONING: ...". Errors wrap ErrUnparseable.
func ParseJudgeAnswer(text string) (JudgeAnswer, error) {
	if a, ok, err := parseJudgeJSON(text); ok {
		return a, err
	}
	return parseJudgeLines(text)
}

func parseJudgeJSON(text string) (JudgeAnswer, bool, error) {
	start, end := strings.Index(text, "{"), strings.LastIndex(text, "}")
	if start < 0 || end <= start {
		return JudgeAnswer{}, false, nil
	}
	var raw struct {
		Verdict      string          `json:"verdict"`
		Confidence   json.RawMessage `json:"confidence"`
		Reasoning    string          `json:"reasoning"`
		OffenseLevel string          `json:"offense_level"`
	}
	if err := json.Unmarshal([]byte(text[start:end+1]), &raw); err != nil {
		// Braces inside prose: fall back to the line format.
		return JudgeAnswer{}, false, nil
	}
	if raw.Verdict == "" && len(raw.Confidence) == 0 {
		return JudgeAnswer{}, false, nil
	}
	conf := strings.Trim(string(raw.Confidence), `"`)
	a, err := buildJudgeAnswer(raw.Verdict, conf, raw.Reasoning, raw.OffenseLevel)
	return a, true, err
}

func parseJudgeLines(text string) (JudgeAnswer, error) {
	var verdict, conf, offense string
	var reasoning []string
	inReasoning := false
	for _, line := range strings.Split(text, "\n") {
		key, val, ok := splitField(line)
		switch {
		case ok && key == "VERDICT":
			verdict, inReasoning = val, false
		case ok && key == "CONFIDENCE":
			conf, inReasoning = val, false
		case ok && (key == "OFFENSE" || key == "OFFENSE_LEVEL" || key == "OFFENSE LEVEL"):
			offense, inReasoning = val, false
		case ok && key == "REASONING":
			reasoning, inReasoning = append(reasoning[:0], val), true
		case inReasoning:
			reasoning = append(reasoning, strings.TrimSpace(line))
		}
	}
	if verdict == "" {
		return JudgeAnswer{}, fmt.Errorf("%w: no JSON verdict object and no VERDICT: line", ErrUnparseable)
	}
	return buildJudgeAnswer(verdict, conf, strings.TrimSpace(strings.Join(reasoning, "\n")), offense)
}

// splitField reads "KEY: value", tolerating markdown emphasis and list marks.
func splitField(line string) (key, val string, ok bool) {
	line = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line), "-*# "))
	k, v, found := strings.Cut(line, ":")
	if !found {
		return "", "", false
	}
	k = strings.ToUpper(strings.TrimSpace(strings.Trim(k, "*_ ")))
	return k, strings.TrimSpace(strings.Trim(strings.TrimSpace(v), "*_")), true
}

func buildJudgeAnswer(verdict, conf, reasoning, offense string) (JudgeAnswer, error) {
	var a JudgeAnswer
	v := Vote(strings.ToUpper(strings.Trim(strings.TrimSpace(verdict), "*_`\"'.")))
	switch v {
	case VotePass, VoteReview, VoteFail, VoteAbstain:
		a.Verdict = v
	default:
		return a, fmt.Errorf("%w: verdict %q is not PASS, REVIEW, FAIL or ABSTAIN", ErrUnparseable, verdict)
	}
	c, err := parseConfidence(conf)
	if err != nil {
		return a, err
	}
	a.Confidence = c
	a.Reasoning = reasoning
	switch o := Offense(strings.ToLower(strings.TrimSpace(offense))); o {
	case "":
		a.Offense = OffenseNone
	case OffenseNone, OffenseMinor, OffenseMajor, OffenseCapital:
		a.Offense = o
	default:
		return a, fmt.Errorf("%w: offense level %q is not none, minor, major or capital", ErrUnparseable, offense)
	}
	return a, nil
}

func parseConfidence(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("%w: no confidence", ErrUnparseable)
	}
	percent := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64)
	if err != nil {
		return 0, fmt.Errorf("%w: confidence %q is not a number", ErrUnparseable, s)
	}
	if percent {
		f /= 100
	}
	if f < 0 || f > 1 || f != f {
		return 0, fmt.Errorf("%w: confidence %s is outside 0-1", ErrUnparseable, s)
	}
	return f, nil
}
