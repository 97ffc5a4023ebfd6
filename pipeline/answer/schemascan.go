package answer

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// schemaFields are the verdict schema's fields, in the order its Schema
// lists them.
var schemaFields = [...]string{"verdict", "confidence", "offense_level", "reasoning"}

// scanSchema reads the verdict schema's object in one pass over its bytes,
// with no decoder and, for a plain answer, no allocation: exactly the four
// fields, each once and in any order, with JSON whitespace between the
// tokens, the enums as the schema spells them, a confidence number from 0 to
// 1, and nothing after the object. Strings are decoded as encoding/json
// decodes them. It reports false for anything else, and decodeTokens, the
// token-by-token reader, reads that: scanSchema accepts only objects that
// decodeTokens accepts, with the same answer, so which one reads an object
// never shows, and a refused object is refused with decodeTokens's reason.
func scanSchema(s string) (JudgeAnswer, bool) {
	var a JudgeAnswer
	var seen [len(schemaFields)]bool
	i := skipSpace(s, 0)
	if i == len(s) || s[i] != '{' {
		return a, false
	}
	for n := range len(schemaFields) {
		key, end, ok := scanString(s, skipSpace(s, i+1)) // past '{' or ','
		f := slices.Index(schemaFields[:], key)
		if !ok || f < 0 || seen[f] {
			return a, false
		}
		seen[f] = true
		i = skipSpace(s, end)
		if i == len(s) || s[i] != ':' {
			return a, false
		}
		if i, ok = scanSchemaValue(&a, f, s, skipSpace(s, i+1)); !ok {
			return a, false
		}
		i = skipSpace(s, i)
		next := byte(',')
		if n == len(schemaFields)-1 {
			next = '}'
		}
		if i == len(s) || s[i] != next {
			return a, false
		}
	}
	return a, skipSpace(s, i+1) == len(s)
}

// scanSchemaValue reads the value at s[i:] of field f (an index into
// schemaFields) into a and returns where it ends; false when the value is
// not one the schema allows.
func scanSchemaValue(a *JudgeAnswer, f int, s string, i int) (int, bool) {
	if f == 1 { // confidence
		end, ok := scanNumber(s, i)
		if !ok {
			return 0, false
		}
		c, err := strconv.ParseFloat(s[i:end], 64) // as json.Number.Float64
		if err != nil || math.IsNaN(c) || c < 0 || c > 1 {
			return 0, false
		}
		a.Confidence = c
		return end, true
	}
	v, end, ok := scanString(s, i)
	if !ok {
		return 0, false
	}
	switch f {
	case 0:
		a.Verdict = Vote(v)
		ok = slices.Contains([]Vote{VotePass, VoteReview, VoteFail, VoteAbstain}, a.Verdict)
	case 2:
		a.Offense = Offense(v)
		ok = slices.Contains([]Offense{OffenseNone, OffenseMinor, OffenseMajor, OffenseCapital}, a.Offense)
	default:
		a.Reasoning = cutRunes(strings.TrimSpace(v), MaxSchemaReasoning)
	}
	return end, ok
}

// scanString reads the JSON string that starts at s[i] and returns its
// value and where it ends. A string of valid UTF-8 with no escapes and no
// control characters is its own value, taken from s; any other is decoded
// by encoding/json, which replaces invalid UTF-8 as it always does. False:
// no string starts at s[i], or it is not valid JSON.
func scanString(s string, i int) (v string, end int, ok bool) {
	if i == len(s) || s[i] != '"' {
		return "", 0, false
	}
	plain := true
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			if v := s[i+1 : j]; plain && utf8.ValidString(v) {
				return v, j + 1, true
			}
			var d string // apart from v, which would go to the heap with it
			err := json.Unmarshal([]byte(s[i:j+1]), &d)
			return d, j + 1, err == nil
		case c == '\\':
			plain = false
			j++ // the escaped byte cannot end the string
		case c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

// scanNumber returns where the JSON number that starts at s[i] ends: an
// optional minus, 0 or digits not starting with 0, optionally a fraction
// and an exponent. False: none starts there.
func scanNumber(s string, i int) (int, bool) {
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i = skipDigits(s, i)
	default:
		return 0, false
	}
	if i < len(s) && s[i] == '.' {
		j := skipDigits(s, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := skipDigits(s, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

// skipDigits returns the index of the first byte at or after i that is not
// an ASCII digit.
func skipDigits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace (space, tab, line feed, carriage return).
func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}
