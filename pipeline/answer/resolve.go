package answer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/noesis-dev/noesis/pipeline/internal/text"
)

// resolve turns the statements of one answer into the judge's answer. Every
// statement of a field must agree: two verdicts, two confidences or two
// offense levels that differ are not guessed between (the judge is asked
// again), whatever languages and shapes they are written in.
func resolve(items []item) (JudgeAnswer, error) {
	var a JudgeAnswer
	last := -1
	seen := map[Vote]bool{}
	for i, it := range items {
		if it.kind != fieldVerdict {
			continue
		}
		v, k := readVerdict(it.value)
		switch k {
		case verdictTemplate:
			continue
		case verdictNone:
			return a, fmt.Errorf("%w: verdict %q is not PASS, REVIEW, FAIL or ABSTAIN", ErrUnparseable, text.Clip(it.value, 80))
		case verdictAmbiguous:
			return a, fmt.Errorf("%w: ambiguous verdict %q", ErrUnparseable, text.Clip(it.value, 80))
		}
		seen[v] = true
		last = i
	}
	if last < 0 {
		return a, fmt.Errorf("%w: no verdict in the answer (no VERDICT line or verdict object of the judge's own)", ErrUnparseable)
	}
	if len(seen) > 1 {
		return a, fmt.Errorf("%w: the answer states %s", ErrUnparseable, joinVotes(seen))
	}
	a.Verdict, _ = readVerdict(items[last].value)
	c, found, err := agreedConfidence(items)
	switch {
	case err != nil:
		return a, err
	case found:
		a.Confidence = c
	case a.Verdict == VotePass:
		return a, fmt.Errorf("%w: PASS with no confidence", ErrUnparseable)
	}
	if a.Offense, err = agreedOffense(items); err != nil {
		return a, err
	}
	a.Reasoning = strings.TrimSpace(pick(items, fieldReasoning, items[last].group))
	return a, nil
}

// agreedConfidence reads every confidence the answer gives; they must be one.
// A statement with no number ("Confidence: high") does not count when another
// gives one; alone, it is unreadable. The prompt's own description echoed
// back ("a number from 0 to 1") is no confidence.
func agreedConfidence(items []item) (float64, bool, error) {
	var noNumber error
	found, value := false, 0.0
	for _, it := range items {
		if it.kind != fieldConfidence || confidenceTemplate(it.value) {
			continue
		}
		c, err := readConfidence(it.value)
		switch {
		case errors.Is(err, errNoNumber):
			noNumber = err
		case err != nil:
			return 0, false, err
		case found && c != value:
			return 0, false, fmt.Errorf("%w: the answer gives two confidences, %v and %v", ErrUnparseable, value, c)
		default:
			found, value = true, c
		}
	}
	if !found && noNumber != nil {
		return 0, false, noNumber
	}
	return value, found, nil
}

func confidenceTemplate(v string) bool {
	l := strings.ToLower(v)
	return strings.Contains(l, "number") && (strings.Contains(l, "0 to 1") || strings.Contains(l, "0 and 1") || strings.Contains(l, "0-1"))
}

// agreedOffense reads every offense level the answer gives; they must be
// one. None given is none.
func agreedOffense(items []item) (Offense, error) {
	var level Offense
	for _, it := range items {
		if it.kind != fieldOffense {
			continue
		}
		o, ok, err := readOffense(it.value)
		switch {
		case err != nil:
			return "", err
		case !ok: // the prompt's list of levels echoed back
		case level != "" && o != level:
			return "", fmt.Errorf("%w: the answer gives two offense levels, %s and %s", ErrUnparseable, level, o)
		default:
			level = o
		}
	}
	if level == "" {
		return OffenseNone, nil
	}
	return level, nil
}

// pick returns the last statement of kind, from the verdict's own group
// (its JSON object, or the lines) when it has one.
func pick(items []item, kind fieldKind, group int) string {
	found, value := false, ""
	for _, it := range items {
		if it.kind == kind && it.group == group {
			found, value = true, it.value
		}
	}
	if found {
		return value
	}
	for _, it := range items {
		if it.kind == kind {
			value = it.value
		}
	}
	return value
}
