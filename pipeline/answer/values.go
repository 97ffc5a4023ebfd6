package answer

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/noesis-dev/noesis/pipeline/internal/text"
)

// isBareVerdict reports whether a line is only a verdict word, perhaps with punctuation.
// It counts runs of letters and stops at the second: most lines it sees are
// prose, so it must not split them.
func isBareVerdict(s string) bool {
	words, in := 0, false
	for _, r := range s {
		letter := unicode.IsLetter(r)
		if letter && !in {
			if words++; words > 1 {
				return false
			}
		}
		in = letter
	}
	return words == 1
}

type verdictKind int

const (
	verdictOK        verdictKind = iota
	verdictNone                  // no verdict word
	verdictAmbiguous             // two verdicts, or a negated one
	verdictTemplate              // the prompt's list of choices echoed back
)

// readVerdict reads a verdict value: the verdict word it starts with (a
// qualifier may follow), or the only verdict word in it, in any language
// noesis reads (see verdictWords).
func readVerdict(value string) (Vote, verdictKind) {
	u := fold(value)
	ws := wordsIn(u)
	var found []int // indexes in ws of verdict words
	votes := map[Vote]bool{}
	for i, w := range ws {
		if v, ok := verdictWords[w.text]; ok {
			found = append(found, i)
			votes[v] = true
		}
	}
	if len(found) == 0 {
		return "", verdictNone
	}
	if len(votes) >= 3 || strings.Contains(u, "|") {
		return "", verdictTemplate
	}
	first := found[0]
	for _, w := range ws[:first] {
		if negates(w.text) {
			return "", verdictAmbiguous
		}
	}
	vote := verdictWords[ws[first].text]
	if len(votes) == 1 {
		return vote, verdictOK
	}
	// Two different verdicts: read the first only when it opens the value and
	// the second is a qualifier, not an alternative ("PASS or FAIL",
	// "APROVADO / REVISÃO", "PASS, REVIEW").
	if first != 0 || strings.TrimSpace(strings.Trim(u[:ws[first].start], " \t\"'([{*_:")) != "" {
		return "", verdictAmbiguous
	}
	if after := strings.TrimSpace(u[ws[first].end:]); strings.HasPrefix(after, "/") || strings.HasPrefix(after, ",") {
		return "", verdictAmbiguous
	}
	for _, w := range ws[first+1 : found[1]] {
		if alternatives[w.text] {
			return "", verdictAmbiguous
		}
	}
	return vote, verdictOK
}

func joinVotes(m map[Vote]bool) string {
	var out []string
	for _, v := range []Vote{VotePass, VoteReview, VoteFail, VoteAbstain} {
		if m[v] {
			out = append(out, string(v))
		}
	}
	return strings.Join(out, " and ")
}

// readOffense reads an offense level in any language noesis reads. A value
// that opens with a negation ("no", "não", "sem ofensa") states none. A level
// word denied by a negation just before it ("not capital", "nada grave") is
// not read. What names two levels ("leve ou grave", "no offense, at most
// minor") or a range ("leve a moderada") is not guessed between; the
// prompt's list of levels echoed back is a template (ok false, no error).
func readOffense(s string) (o Offense, ok bool, err error) {
	ws := wordsIn(fold(s))
	levels := map[Offense]bool{}
	var first Offense
	denied := false
	noneStated := strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "n/a") || len(ws) > 0 && negates(ws[0].text)
	for i, w := range ws {
		level, isLevel := offenseWords[w.text]
		if !isLevel {
			continue
		}
		if by := negatedBy(ws, i); by >= 0 {
			denied, noneStated = true, noneStated && by != 0
			continue
		}
		if i+2 < len(ws) && rangeWords[ws[i+1].text] && !levelWord(ws[i+2].text) {
			return "", false, fmt.Errorf("%w: offense level %q names a range", ErrUnparseable, text.Clip(s, 40))
		}
		if len(levels) == 0 {
			first = level
		}
		levels[level] = true
	}
	if noneStated {
		if len(levels) == 0 {
			first = OffenseNone
		}
		levels[OffenseNone] = true
	}
	switch {
	case len(levels) >= 3:
		return "", false, nil
	case len(levels) == 2:
		return "", false, fmt.Errorf("%w: offense level %q names two levels", ErrUnparseable, text.Clip(s, 40))
	case len(levels) == 1:
		return first, true, nil
	case denied: // "not capital": then which?
		return "", false, fmt.Errorf("%w: offense level %q denies a level without naming one", ErrUnparseable, text.Clip(s, 40))
	}
	return "", false, fmt.Errorf("%w: offense level %q is not none, minor, major or capital", ErrUnparseable, text.Clip(s, 40))
}

// rangeWords join a level to another word as a range ("leve a moderada",
// "minor to moderate") or an alternative.
var rangeWords = set("TO", "A", "ATE", "HASTA", "OR", "OU", "O")

// negatedBy returns the index of the negation that denies the word at i
// ("not capital", "not a capital"), or -1.
func negatedBy(ws []word, i int) int {
	switch {
	case i > 0 && negates(ws[i-1].text):
		return i - 1
	case i > 1 && negates(ws[i-2].text) && !levelWord(ws[i-1].text):
		return i - 2
	}
	return -1
}

func levelWord(w string) bool {
	_, ok := offenseWords[w]
	return ok
}
