package answer

import (
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

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
	raw        string          // the thought as quoted
	normalised bool            // quote and quoteLines are set
	quote      string          // the thought, normalised (when first needed)
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
	if r.raw == "" {
		return false
	}
	if !r.normalised { // only untagged answers need it: done at most once
		r.quote, r.quoteLines, r.normalised = normalise(r.raw), quoteLines(r.raw), true
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
	items := append(scanJSON(text, r.tag), r.scanLines(text)...)
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

// labelChar reports whether r may stand in a label ("Final verdict",
// "Offense-level (0-3)", "Nível de confiança").
func labelChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == ' ' || r == '_' || r == '(' || r == ')' || r == '\'' || r == '-' ||
		r >= utf8.RuneSelf && unicode.IsLetter(r)
}

// labelStart reports whether s begins with a letter, as a label does.
func labelStart(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= utf8.RuneSelf && unicode.IsLetter(r)
}

// splitField reads "KEY: value", "KEY = value" or "KEY - value" (a spaced
// dash or em dash): a label of at most 41 letters and the like, starting
// with a letter, then the separator. Hand-written: the hot path of reading.
func splitField(s string) (key, value string, ok bool) {
	if !labelStart(s) {
		return "", "", false
	}
	for i, r := range s {
		if i > 41 {
			return "", "", false
		}
		switch {
		case r == ':' || r == '=':
			return strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:]), true
		case (r == '-' || r == '–' || r == '—') && i > 0 && s[i-1] == ' ':
			n := i + utf8.RuneLen(r)
			if n < len(s) && s[n] == ' ' {
				return strings.TrimSpace(s[:i]), strings.TrimSpace(s[n:]), true
			}
			if r != '-' {
				return "", "", false
			}
		case !labelChar(r):
			return "", "", false
		}
	}
	return "", "", false
}

// labelOnly reads a heading or label with no value ("## Verdict", "Verdict:"):
// its value is on the next line.
func labelOnly(s string) (string, bool) {
	s = strings.TrimSuffix(strings.TrimSpace(s), ":")
	if len(s) > 42 || !labelStart(s) {
		return "", false
	}
	for _, r := range s {
		if !labelChar(r) {
			return "", false
		}
	}
	return s, true
}

var (
	// "Confidence 0.7": a number needs no colon.
	numberLineRE = regexp.MustCompile(`(?i)^(confidence(?: level| score)?|certainty|confian[çc]a|confianza|certeza)\s+(\d.*|[.,]\d.*)$`)
	emphasisRE   = regexp.MustCompile("[*`]+|__+")
)

// scanLines reads the labelled lines of text.
func (r *reader) scanLines(text string) []item {
	var items []item
	var pending *fieldKind // a label whose value is on a following line
	reasoning := -1        // index of the reasoning item being continued
	taggedBlock := false   // a line holding only the tag tags the lines after it
	var tb table           // the markdown table being read
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
		if cells, ok := tableCells(clean); ok {
			pending, reasoning = nil, -1
			for _, f := range tb.read(cells) {
				items = append(items, item{kind: f.kind, value: f.value, span: raw, pos: at, tagged: tagged})
			}
			continue
		}
		tb = table{}
		if kind, value, ok := lineField(clean); ok {
			pending, reasoning = nil, -1
			if value == "" {
				pending = &kind
				continue
			}
			items = append(items, item{kind: kind, value: value, span: raw, pos: at, tagged: tagged})
			if kind == fieldReasoning {
				reasoning = len(items) - 1
			}
			continue
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
			if !isBareVerdict(clean) {
				break
			}
			if v, k := readVerdict(clean); k == verdictOK {
				items = append(items, item{kind: fieldVerdict, value: string(v), span: raw, pos: at, tagged: tagged, bare: true})
			}
		}
	}
	return items
}

// lineField reads a labelled line: its field and value, the value empty
// when it is on the lines that follow ("## Veredito").
func lineField(clean string) (kind fieldKind, value string, ok bool) {
	key, value, found := splitField(clean)
	if !found && (hasPrefixFold(clean, "conf") || hasPrefixFold(clean, "cert")) {
		if m := numberLineRE.FindStringSubmatch(clean); m != nil {
			key, value, found = m[1], m[2], true
		}
	}
	if found {
		if kind, ok := fieldOf(key); ok {
			return kind, strings.TrimSpace(value), true
		}
	}
	if label, ok := labelOnly(clean); ok {
		if kind, ok := fieldOf(label); ok {
			return kind, "", true
		}
	}
	return 0, "", false
}

// isSymbol reports whether r is a symbol a line may open with ("✅ Veredito:",
// "⚖️ Verdict:"): an emoji, its variation selector or joiner.
func isSymbol(r rune) bool {
	return unicode.Is(unicode.So, r) || r == 0xFE0F || r == 0x200D
}

// clean removes markdown emphasis and the marks that lead a line (quote,
// heading, bullet, "1." or "2)"). Hand-written: the hot path of reading.
func clean(line string) string {
	if strings.ContainsAny(line, "*`") || strings.Contains(line, "__") {
		line = emphasisRE.ReplaceAllString(line, "")
	}
	line = strings.TrimSpace(line)
	for {
		t := strings.TrimLeftFunc(strings.TrimLeft(line, ">#-+•_ \t"), isSymbol)
		j := 0
		for j < len(t) && t[j] >= '0' && t[j] <= '9' {
			j++
		}
		if j > 0 && j+1 < len(t) && (t[j] == '.' || t[j] == ')') && (t[j+1] == ' ' || t[j+1] == '\t') {
			t = t[j+2:]
		}
		if t == line {
			break
		}
		line = t
	}
	for line != "" && strings.IndexByte(":;,.)]} ", line[0]) >= 0 {
		if (line[0] == '.' || line[0] == ',') && len(line) > 1 && line[1] >= '0' && line[1] <= '9' {
			break // a number: ".85", ",9"
		}
		line = line[1:]
	}
	return strings.TrimSpace(line)
}

// hasPrefixFold reports whether s begins with the ASCII prefix, in any case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
