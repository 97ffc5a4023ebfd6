package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// Escape returns s made safe to print on a terminal, for text that agents
// supplied (event ids, subjects, reasons, worker announcements): the C0
// controls, DEL, ESC and the C1 controls, the bidi overrides, embeddings,
// isolates and marks (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C)
// and the line and paragraph separators (U+2028, U+2029) are shown as
// visible escapes (\x1b, \n, \u009b, \u202e), and each byte of invalid UTF-8
// as \xNN. Any other text, accents and emoji included, is returned as it is,
// and so are backslashes: the result is for reading, not for parsing back
// (--json is). Safe for concurrent use.
func Escape(s string) string {
	i := firstUnsafe(s, utf8.DecodeRuneInString, true)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafeRune reports whether r may not reach a terminal as it is.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f: // C0, DEL, C1
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi embeddings, overrides, isolates
		return true
	}
	switch r {
	case 0x200e, 0x200f, 0x061c, 0x2028, 0x2029: // bidi marks; line and paragraph separators
		return true
	}
	return false
}

// firstUnsafe is the index of s's first byte that Escape changes, or -1;
// with c0 false, the index of the first that EscapeJSON changes (it leaves
// the C0 controls to encoding/json). decode is utf8's DecodeRuneInString for
// a string, DecodeRune for bytes.
func firstUnsafe[T string | []byte](s T, decode func(T) (rune, int), c0 bool) int {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c == 0x7f || c0 && c < 0x20 {
				return i
			}
			i++
			continue
		}
		r, n := decode(s[i:])
		if r == utf8.RuneError && n == 1 || unsafeRune(r) {
			return i
		}
		i += n
	}
	return -1
}

// EscapeJSON returns JSON text b with what encoding/json leaves raw and a
// terminal would act on escaped inside its strings: DEL, the C1 controls,
// the bidi controls and the line and paragraph separators as \u escapes, and
// each byte of invalid UTF-8 as \ufffd. encoding/json escapes the C0
// controls itself. These can occur only inside JSON strings, so the result
// is JSON of the same value (invalid UTF-8 aside, which encoding/json also
// reads as U+FFFD). b is returned as it is when nothing needs escaping.
func EscapeJSON(b []byte) []byte {
	i := firstUnsafe(b, utf8.DecodeRune, false) // the C0 controls are encoding/json's
	if i < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	out = append(out, b[:i]...)
	for i < len(b) {
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			out = append(out, `\ufffd`...)
		case r >= 0x20 && unsafeRune(r):
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return out
}

// WriteJSON writes v to w as indented JSON, escaped by EscapeJSON, with a
// newline: the --json output of the commands.
func WriteJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(EscapeJSON(b), '\n'))
	return err
}

// jsonLogWriter passes each log line through EscapeJSON: zerolog escapes
// only the C0 controls.
type jsonLogWriter struct{ w io.Writer }

// Write writes p escaped, and reports all of p written when it was.
func (j jsonLogWriter) Write(p []byte) (int, error) {
	if _, err := j.w.Write(EscapeJSON(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteLevel writes p escaped, telling the writer beneath the line's level
// when it takes it (a LineBuffer writes warnings and errors at once).
func (j jsonLogWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	lw, ok := j.w.(zerolog.LevelWriter)
	if !ok {
		return j.Write(p)
	}
	if _, err := lw.WriteLevel(l, EscapeJSON(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
