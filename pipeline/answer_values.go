package pipeline

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
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

var (
	verdictWordRE = regexp.MustCompile(`\b(PASS(?:ED|ES)?|REVIEW|FAIL(?:ED|S)?|ABSTAIN(?:S|ED)?)\b`)
	negationRE    = regexp.MustCompile(`\b(NOT|NO|N'T|NEVER|CANNOT)\b|N'T\b`)
	alternativeRE = regexp.MustCompile(`^\s*(?:\||/|OR\b|,)`)
)

// readVerdict reads a verdict value: the verdict word it starts with (a
// qualifier may follow), or the only verdict word in it.
func readVerdict(value string) (Vote, verdictKind) {
	u := strings.ToUpper(value)
	locs := verdictWordRE.FindAllStringSubmatchIndex(u, -1)
	if len(locs) == 0 {
		return "", verdictNone
	}
	votes := map[Vote]bool{}
	for _, l := range locs {
		votes[voteOf(u[l[2]:l[3]])] = true
	}
	if len(votes) >= 3 || strings.Contains(u, "|") {
		return "", verdictTemplate
	}
	first := voteOf(u[locs[0][2]:locs[0][3]])
	if negationRE.MatchString(u[:locs[0][0]]) {
		return "", verdictAmbiguous
	}
	if len(votes) == 1 {
		return first, verdictOK
	}
	// Two different verdicts: read the first only when it opens the value and
	// the second is a qualifier, not an alternative ("PASS or FAIL").
	startsWith := strings.TrimSpace(strings.Trim(u[:locs[0][0]], " \t\"'([{*_:")) == ""
	if startsWith && !alternativeRE.MatchString(u[locs[0][1]:]) && !strings.Contains(u[locs[0][1]:locs[1][0]], " OR ") {
		return first, verdictOK
	}
	return "", verdictAmbiguous
}

func voteOf(word string) Vote {
	switch {
	case strings.HasPrefix(word, "PASS"):
		return VotePass
	case strings.HasPrefix(word, "FAIL"):
		return VoteFail
	case strings.HasPrefix(word, "ABSTAIN"):
		return VoteAbstain
	}
	return VoteReview
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

var confidenceRE = regexp.MustCompile(`(?i)(\d+(?:\.\d+)?|\.\d+)\s*(%|percent|/\s*100|/\s*10\b|out of 100|out of 10\b)?`)

// readConfidence reads 0.85, 85 %, 85/100, 8.5/10 or 85 (a 0-100 scale) as 0.85.
func readConfidence(s string) (float64, error) {
	m := confidenceRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%w: confidence %q is not a number", ErrUnparseable, clip(s, 40))
	}
	if i := strings.Index(s, m[0]); i > 0 && s[i-1] == '-' {
		return 0, fmt.Errorf("%w: confidence %s is outside 0-1", ErrUnparseable, clip(s, 40))
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%w: confidence %q is not a number", ErrUnparseable, clip(s, 40))
	}
	switch unit := strings.ToLower(strings.Join(strings.Fields(m[2]), " ")); {
	case unit == "%" || unit == "percent" || strings.HasSuffix(unit, "100"):
		f /= 100
	case strings.HasSuffix(unit, "10"):
		f /= 10
	case f > 1 && f <= 10:
		return 0, fmt.Errorf("%w: confidence %s has no scale (0-10 or 0-100?)", ErrUnparseable, clip(s, 40))
	case f > 1 && f <= 100:
		f /= 100 // a score on a 0-100 scale
	}
	if f < 0 || f > 1 {
		return 0, fmt.Errorf("%w: confidence %s is outside 0-1", ErrUnparseable, clip(s, 40))
	}
	return math.Round(f*1e4) / 1e4, nil
}

var offenseWordRE = regexp.MustCompile(`(?i)\b(none|minor|major|capital|no|nil|n/a)\b`)

func readOffense(s string) (Offense, error) {
	m := offenseWordRE.FindStringSubmatch(s)
	if m == nil {
		return "", fmt.Errorf("%w: offense level %q is not none, minor, major or capital", ErrUnparseable, clip(s, 40))
	}
	switch o := Offense(strings.ToLower(m[1])); o {
	case OffenseMinor, OffenseMajor, OffenseCapital:
		return o, nil
	}
	return OffenseNone, nil
}
