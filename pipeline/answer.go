package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// SplitThink separates a reasoning model's chain of thought from its answer.
// The answer is what follows the last </think>: a model's final answer comes
// after all of its thinking, and DeepSeek-R1-0528's chat template opens the
// block itself, so its output often holds a closing tag and no opening one.
// Taking the last closing tag means a </think> quoted from the thought inside
// the thinking cannot end the thinking early. An opening tag that is never
// closed (the token budget ran out mid-thought) makes the rest reasoning.
// Both parts are returned trimmed, the tags removed from the reasoning.
func SplitThink(content string) (answer, reasoning string) {
	const open, closeTag = "<think>", "</think>"
	think := ""
	if i := strings.LastIndex(content, closeTag); i >= 0 {
		think, content = content[:i], content[i+len(closeTag):]
	}
	if i := strings.Index(content, open); i >= 0 {
		think += "\n" + content[i+len(open):]
		content = content[:i]
	}
	if think != "" {
		think = strings.NewReplacer(open, "\n", closeTag, "\n").Replace(think)
		lines := strings.Split(think, "\n")
		kept := lines[:0]
		for _, l := range lines {
			if l = strings.TrimSpace(l); l != "" {
				kept = append(kept, l)
			}
		}
		think = strings.Join(kept, "\n")
	}
	return strings.TrimSpace(content), think
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

// ErrUnparseable marks a model answer from which no verdict can be read, or
// whose verdict is ambiguous. A judge whose answer is unparseable abstains.
var ErrUnparseable = errors.New("unparseable answer")

// AnswerTag returns the tag a judge is asked to begin its answer lines with,
// for the quoted thought data it judges. It is a digest of the prompt version,
// the judge and the data, so it is the same for the same question in every
// process (caches and coalescing keep working), and the thought's author
// cannot write it into the thought: the tag depends on every byte of the data
// that would have to contain it.
func AnswerTag(judge, data string) string {
	h := sha256.New()
	h.Write([]byte(PromptVersion + "\x00" + judge + "\x00" + data))
	return "NZ" + hex.EncodeToString(h.Sum(nil)[:8])
}

// Quote is what a judge must not be taken to say: the text of the thought
// under judgement. A verdict, confidence or offense that only repeats it is
// the agent's words, not the judge's.
type Quote string

// ParseJudgeAnswer reads a judge's answer (already stripped of <think>) with
// no answer tag and nothing quoted. See ReadJudgeAnswer.
func ParseJudgeAnswer(text string) (JudgeAnswer, error) {
	return ReadJudgeAnswer(text, "", "", "")
}

// ReadJudgeAnswer reads a judge's answer the way a person would.
//
// Accepted: the lines "VERDICT: / CONFIDENCE: / OFFENSE: / REASONING:" under
// any of their usual names ("Final verdict", "Decision", "Rationale",
// "Severity", ...), with markdown emphasis, list marks, headings (a value on
// the line after "## Verdict"), a qualifier after the verdict ("PASS (with
// minor caveats)"); a JSON object, bare or fenced, with prose around it; a
// line that is nothing but a verdict ("**FAIL**"). A confidence may be 0.85,
// 85 %, 85/100, 8.5/10 or 85 on a 0-100 scale.
//
// Lines that carry tag (see AnswerTag) are the judge's own answer and win
// over everything else, first in the answer, then in the reasoning (a </think>
// quoted from the thought can make the judge's answer look like thinking).
// Without tagged lines, an untagged statement whose text appears in quote is
// dropped as an echo of the thought, and so is an echo of the prompt's own
// format ("PASS | REVIEW | FAIL").
//
// A PASS needs a confidence (it is the vote); REVIEW, FAIL and ABSTAIN may go
// without one (confidence 0). Two different verdicts, a negated one ("not
// PASS") or none at all are errors wrapping ErrUnparseable, which say why.
func ReadJudgeAnswer(answer, reasoning, tag string, quote Quote) (JudgeAnswer, error) {
	r := reader{tag: asciiLower(tag), quote: normalise(string(quote)), quoteLines: quoteLines(string(quote))}
	items := r.scan(answer)
	if r.tag != "" {
		if tagged := onlyTagged(items); hasVerdict(tagged) {
			return r.resolve(tagged)
		}
		if reasoning != "" {
			// A </think> quoted from the thought can move the judge's tagged
			// lines into what looks like thinking; they are still its own.
			if tagged := onlyTagged(r.scan(reasoning)); hasVerdict(tagged) {
				return r.resolve(tagged)
			}
		}
	}
	return r.resolve(r.withoutEchoes(items))
}

// ReadTaggedAnswer reads only the lines that carry tag: for an answer cut
// off at max_tokens, where untagged text may be thinking, not an answer.
func ReadTaggedAnswer(answer, tag string) (JudgeAnswer, error) {
	if tag == "" {
		return JudgeAnswer{}, fmt.Errorf("%w: no answer tag to read by", ErrUnparseable)
	}
	r := reader{tag: asciiLower(tag)}
	tagged := onlyTagged(r.scan(answer))
	if !hasVerdict(tagged) {
		return JudgeAnswer{}, fmt.Errorf("%w: no tagged verdict line", ErrUnparseable)
	}
	return r.resolve(tagged)
}

type fieldKind int

const (
	fieldVerdict fieldKind = iota
	fieldConfidence
	fieldOffense
	fieldReasoning
)

// item is one statement found in an answer: a field, its value, the text it
// was read from (to tell echoes of the thought), and the group it belongs to
// (one JSON object, or all the lines).
type item struct {
	kind   fieldKind
	value  string
	span   string
	pos    int // where in the text it starts
	group  int
	tagged bool
	bare   bool // a line that is only a verdict word
}

type reader struct {
	tag        string
	quote      string          // the thought, normalised
	quoteLines map[string]bool // its lines, normalised
}

func onlyTagged(items []item) []item {
	var out []item
	for _, it := range items {
		if it.tagged {
			out = append(out, it)
		}
	}
	return out
}

func hasVerdict(items []item) bool {
	for _, it := range items {
		if it.kind == fieldVerdict {
			if _, k := readVerdict(it.value); k != verdictTemplate {
				return true
			}
		}
	}
	return false
}

// withoutEchoes drops the untagged statements that repeat the thought.
func (r *reader) withoutEchoes(items []item) []item {
	out := items[:0:0]
	for _, it := range items {
		if !it.tagged && r.echoes(it) {
			continue
		}
		out = append(out, it)
	}
	return out
}

func (r *reader) echoes(it item) bool {
	if r.quote == "" {
		return false
	}
	n := normalise(it.span)
	if it.bare || len(n) < 10 {
		return r.quoteLines[n]
	}
	return strings.Contains(r.quote, n)
}

// normalise keeps the words (letters and digits), lower-cased and each
// padded by one space: how a statement compares with the thought whatever
// the spacing, quoting and emphasis around it, word by whole word.
func normalise(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte(' ')
	gap := true
	for _, c := range s {
		if unicode.IsLetter(c) || unicode.IsDigit(c) {
			b.WriteRune(unicode.ToLower(c))
			gap = false
		} else if !gap {
			b.WriteByte(' ')
			gap = true
		}
	}
	if !gap {
		b.WriteByte(' ')
	}
	return b.String()
}

func quoteLines(q string) map[string]bool {
	if q == "" {
		return nil
	}
	m := map[string]bool{}
	for _, l := range strings.Split(q, "\n") {
		if n := normalise(l); n != " " {
			m[n] = true
		}
	}
	return m
}

// scan finds the statements of text, in the order they were written.
func (r *reader) scan(text string) []item {
	items := append(r.scanJSON(text), r.scanLines(text)...)
	sort.SliceStable(items, func(i, j int) bool { return items[i].pos < items[j].pos })
	return items
}

// asciiLower lower-cases ASCII letters only, so byte offsets stay valid.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// scanJSON finds every JSON object in text that names a verdict.
func (r *reader) scanJSON(text string) []item {
	var items []item
	group := 1
	for i := 0; i < len(text); i++ {
		if text[i] != '{' {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(text[i:]))
		dec.UseNumber()
		var obj map[string]any
		if dec.Decode(&obj) != nil {
			continue
		}
		end := i + int(dec.InputOffset())
		span := text[i:end]
		fields := flatten(obj)
		if _, ok := fields[fieldVerdict]; !ok {
			continue
		}
		tagged := r.tag != "" && strings.Contains(asciiLower(span), r.tag)
		for _, k := range []fieldKind{fieldVerdict, fieldConfidence, fieldOffense, fieldReasoning} {
			if v, ok := fields[k]; ok {
				items = append(items, item{kind: k, value: v, span: span, pos: i, group: group, tagged: tagged})
			}
		}
		group++
		i = end - 1
	}
	return items
}

// flatten reads an object's fields by their usual names, one level of
// nesting deep ({"judgement": {"verdict": ...}}).
func flatten(obj map[string]any) map[fieldKind]string {
	out := map[fieldKind]string{}
	for k, v := range obj {
		if inner, ok := v.(map[string]any); ok {
			for ik, iv := range flatten(inner) {
				if _, seen := out[ik]; !seen {
					out[ik] = iv
				}
			}
			continue
		}
		kind, ok := fieldOf(k)
		if !ok {
			continue
		}
		switch x := v.(type) {
		case string:
			out[kind] = x
		case json.Number:
			out[kind] = x.String()
		case bool, nil:
		default:
			b, _ := json.Marshal(x)
			out[kind] = string(b)
		}
	}
	return out
}

var (
	// "KEY: value", "KEY = value", "KEY - value" after markdown is removed.
	fieldLineRE = regexp.MustCompile(`^([A-Za-z][A-Za-z _()'-]{0,40}?)\s*(?::|=|\s[-–—]\s)\s*(.*)$`)
	// A heading or label with no value: the value is on the next line.
	labelOnlyRE = regexp.MustCompile(`^([A-Za-z][A-Za-z _()'-]{0,40}?)\s*:?$`)
	// "Confidence 0.7": a number needs no colon.
	numberLineRE = regexp.MustCompile(`(?i)^(confidence(?: level| score)?|certainty)\s+(\d.*|\.\d.*)$`)
	emphasisRE   = regexp.MustCompile("[*`]+|__+")
	leadRE       = regexp.MustCompile(`^(?:[>#\-+•\s]+|\d+[.)]\s+)+`)
)

// fieldOf names the field a label stands for.
func fieldOf(label string) (fieldKind, bool) {
	l := strings.ToLower(strings.TrimSpace(label))
	if i := strings.IndexByte(l, '('); i > 0 {
		l = strings.TrimSpace(l[:i])
	}
	l = strings.NewReplacer("_", " ", "-", " ").Replace(l)
	l = strings.Join(strings.Fields(l), " ")
	for _, p := range []string{"final ", "my ", "overall ", "the ", "judge ", "your "} {
		l = strings.TrimPrefix(l, p)
	}
	switch l {
	case "verdict", "decision", "ruling", "judgment", "judgement", "vote", "answer", "verdict and confidence":
		return fieldVerdict, true
	case "confidence", "confidence level", "confidence score", "certainty", "conf":
		return fieldConfidence, true
	case "offense", "offence", "offense level", "offence level", "severity", "offense severity", "offence severity":
		return fieldOffense, true
	case "reasoning", "reason", "rationale", "justification", "explanation":
		return fieldReasoning, true
	}
	return 0, false
}

// scanLines reads the labelled lines of text.
func (r *reader) scanLines(text string) []item {
	var items []item
	var pending *fieldKind // a label whose value is on a following line
	reasoning := -1        // index of the reasoning item being continued
	taggedBlock := false   // a line holding only the tag tags the lines after it
	pos := 0
	for _, raw := range strings.Split(text, "\n") {
		at := pos
		pos += len(raw) + 1
		line, tagged := raw, false
		if r.tag != "" {
			if i := strings.Index(asciiLower(line), r.tag); i >= 0 {
				line, tagged = line[i+len(r.tag):], true
			}
		}
		clean := clean(line)
		if clean == "" {
			if tagged {
				taggedBlock = true
			} else if strings.TrimSpace(raw) == "" {
				taggedBlock = false
			}
			continue
		}
		tagged = tagged || taggedBlock
		m := fieldLineRE.FindStringSubmatch(clean)
		if m == nil {
			m = numberLineRE.FindStringSubmatch(clean)
		}
		if m != nil {
			if kind, ok := fieldOf(m[1]); ok {
				value := strings.TrimSpace(m[2])
				if value == "" {
					pending, reasoning = &kind, -1
					continue
				}
				items = append(items, item{kind: kind, value: value, span: raw, pos: at, tagged: tagged})
				pending, reasoning = nil, -1
				if kind == fieldReasoning {
					reasoning = len(items) - 1
				}
				continue
			}
		}
		if m := labelOnlyRE.FindStringSubmatch(clean); m != nil {
			if kind, ok := fieldOf(m[1]); ok {
				pending, reasoning = &kind, -1
				continue
			}
		}
		switch {
		case pending != nil:
			items = append(items, item{kind: *pending, value: clean, span: raw, pos: at, tagged: tagged})
			if *pending == fieldReasoning {
				reasoning = len(items) - 1
			}
			pending = nil
		case reasoning >= 0:
			items[reasoning].value += "\n" + strings.TrimSpace(raw)
		default:
			if v, k := readVerdict(clean); k == verdictOK && isBareVerdict(clean) {
				items = append(items, item{kind: fieldVerdict, value: string(v), span: raw, pos: at, tagged: tagged, bare: true})
			}
		}
	}
	return items
}

func clean(line string) string {
	line = emphasisRE.ReplaceAllString(line, "")
	line = leadRE.ReplaceAllString(strings.TrimSpace(line), "")
	return strings.TrimSpace(strings.TrimLeft(line, ":;,.)]} "))
}

// isBareVerdict reports whether a line is only a verdict word, perhaps with punctuation.
func isBareVerdict(s string) bool {
	return len(strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) })) == 1
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

// resolve turns the statements of one answer into the judge's answer.
func (r *reader) resolve(items []item) (JudgeAnswer, error) {
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
			return a, fmt.Errorf("%w: verdict %q is not PASS, REVIEW, FAIL or ABSTAIN", ErrUnparseable, clip(it.value, 80))
		case verdictAmbiguous:
			return a, fmt.Errorf("%w: ambiguous verdict %q", ErrUnparseable, clip(it.value, 80))
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
	pick := func(kind fieldKind) (string, bool) {
		found, value := false, ""
		for _, it := range items { // the verdict's own group first
			if it.kind == kind && it.group == items[last].group {
				found, value = true, it.value
			}
		}
		if found {
			return value, true
		}
		for _, it := range items {
			if it.kind == kind {
				found, value = true, it.value
			}
		}
		return value, found
	}
	if s, ok := pick(fieldConfidence); ok {
		c, err := readConfidence(s)
		if err != nil {
			return a, err
		}
		a.Confidence = c
	} else if a.Verdict == VotePass {
		return a, fmt.Errorf("%w: PASS with no confidence", ErrUnparseable)
	}
	if s, ok := pick(fieldOffense); ok {
		o, err := readOffense(s)
		if err != nil {
			return a, err
		}
		a.Offense = o
	} else {
		a.Offense = OffenseNone
	}
	if s, ok := pick(fieldReasoning); ok {
		a.Reasoning = strings.TrimSpace(s)
	}
	return a, nil
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
