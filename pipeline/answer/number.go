package answer

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/noesis-dev/noesis/pipeline/internal/text"
)

// How a confidence is read. A number is written with a decimal point or a
// decimal comma (0.85, 0,85, .85), with a scale or not: 85 %, 85 por cento,
// 85/100, 8/10, 0.85/1, 8 out of 10, 8 de 10; a bare number above 10 is a
// 0-100 score, a bare one from 1 to 10 has no scale and is not read.
//
// What could be read two ways is not guessed: a separator followed by three
// digits after a non-zero integer (1,000 and 1.000: a thousands separator or a
// decimal one?), two separators (0.9.5, 1.234,5), a range or alternative
// (0,8-0,9, 0,85 ou 0,9), a number that goes on after a separator and a space
// (0, 9), a second confidence that differs from the first ("0.9 (was 0.6)"),
// an exponent. Whole numbers later in the value are counts in an explanation
// ("0.8: 2 of 3 sources agree") and are not confidences.

var (
	numberRE = regexp.MustCompile(`[.,]?\d+(?:[.,]\d+)*`)
	// unitRE reads the scale written after a number.
	unitRE = regexp.MustCompile(`(?i)^\s*(?:(%|percent\b|per cent\b|por cento\b|por ciento\b|pct\b)|(?:/|\bout of\b|\bde\b|\bem\b|\bsobre\b)\s*([.,]?\d+(?:[.,]\d+)*))`)
	// goesOnRE: the number goes on after a separator or a space ("0, 9", "0 9").
	goesOnRE = regexp.MustCompile(`^(?:[.,]\s+|\s+)[.,]?\d`)
	// rangeRE: a range or an alternative follows ("-0,9", " to 0.9", " ou 0,9").
	rangeRE    = regexp.MustCompile(`(?i)^\s*(?:-|–|~|\bto\b|\ba\b|à|\baté\b|\bate\b|\bhasta\b|\bor\b|\bou\b|\bo\b|\band\b|\be\b|\by\b)\s*[.,]?\d`)
	exponentRE = regexp.MustCompile(`^[eE][+-]?\d`)
)

// confidence is one number as written with its scale.
type confidence struct {
	value    float64 // on 0-1
	scaled   bool    // written with a separator or a scale: a confidence, not a count
	from, to int     // where it stands in the value, its scale included
}

// readConfidence reads a judge's confidence as written (see above). A value
// with no number wraps errNoNumber; every error wraps ErrUnparseable.
func readConfidence(s string) (float64, error) {
	locs := numberRE.FindAllStringIndex(s, -1)
	if len(locs) == 0 {
		return 0, fmt.Errorf("%w: confidence %q is %w", ErrUnparseable, text.Clip(s, 40), errNoNumber)
	}
	first, err := readNumber(s, locs[0])
	if err != nil {
		return 0, err
	}
	rest := s[first.to:]
	if goesOnRE.MatchString(rest) || rangeRE.MatchString(rest) {
		return 0, fmt.Errorf("%w: confidence %q is a range or two numbers", ErrUnparseable, text.Clip(s, 40))
	}
	end := first.to
	for _, l := range locs[1:] {
		if l[0] < end {
			continue // the scale's own number
		}
		other, err := readNumber(s, l)
		end = max(l[1], other.to)
		switch {
		case !other.scaled: // a count in an explanation
		case err != nil:
			return 0, err
		case other.value != first.value:
			return 0, fmt.Errorf("%w: confidence %q gives two confidences", ErrUnparseable, text.Clip(s, 40))
		}
	}
	return first.value, nil
}

// readNumber reads the number of s at loc, with the scale written after it.
// Its result says whether it was written as a confidence (scaled) even when
// it cannot be read.
func readNumber(s string, loc []int) (confidence, error) {
	c := confidence{from: loc[0], to: loc[1]}
	tok := s[loc[0]:loc[1]]
	c.scaled = strings.ContainsAny(tok, ".,")
	bad := func(why string) (confidence, error) {
		return c, fmt.Errorf("%w: confidence %q %s", ErrUnparseable, text.Clip(s, 40), why)
	}
	if negative(s[:loc[0]]) {
		c.scaled = true
		return bad("is outside 0-1")
	}
	if exponentRE.MatchString(s[loc[1]:]) {
		c.scaled = true
		return bad("is not a number as written (an exponent)")
	}
	f, why := decimal(tok)
	if why != "" {
		return bad(why)
	}
	u := unitRE.FindStringSubmatch(s[loc[1]:])
	switch {
	case u == nil:
	case u[1] != "":
		c.scaled = true
		f /= 100
	default:
		c.scaled = true
		d, why := decimal(u[2])
		if why != "" {
			return bad("has a scale that " + why)
		}
		if d <= 0 || f > d {
			return bad("is outside its scale")
		}
		f /= d
	}
	if u != nil {
		c.to = loc[1] + len(u[0])
	}
	switch {
	case u != nil:
	case f > 1 && f <= 10:
		return bad("has no scale (0-10 or 0-100?)")
	case f > 1 && f <= 100:
		f /= 100 // a score on a 0-100 scale
	}
	if f < 0 || f > 1 {
		return bad("is outside 0-1")
	}
	c.value = math.Round(f*1e4) / 1e4
	return c, nil
}

// negative reports whether the text before a number ends in a minus sign:
// a dash right before it, not one that joins it to a number ("0,8-0,9").
func negative(before string) bool {
	dash := strings.TrimSuffix(strings.TrimSuffix(before, "-"), "−")
	if dash == before {
		return false
	}
	return dash == "" || dash[len(dash)-1] < '0' || dash[len(dash)-1] > '9'
}

// decimal reads digits with at most one decimal separator, a point or a
// comma, and says why when it cannot be read one way only.
func decimal(tok string) (float64, string) {
	if strings.Count(tok, ".")+strings.Count(tok, ",") > 1 {
		return 0, "has two separators (which one is decimal?)"
	}
	whole, frac, sep := strings.Cut(strings.ReplaceAll(tok, ",", "."), ".")
	if sep && len(frac) == 3 && strings.Trim(whole, "0") != "" {
		return 0, "could be a thousands separator or a decimal one"
	}
	if whole == "" {
		whole = "0"
	}
	f, err := strconv.ParseFloat(whole+"."+frac, 64)
	if !sep {
		f, err = strconv.ParseFloat(whole, 64)
	}
	if err != nil {
		return 0, "is not a number"
	}
	return f, ""
}
