package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/noesis-dev/noesis/config"
)

func TestEscape(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"ascii", "evt-0001 noesis.thoughts.a1", "evt-0001 noesis.thoughts.a1"},
		{"portuguese", "Ação não é solução: pôr à prova", "Ação não é solução: pôr à prova"},
		{"emoji and cjk", "👩‍💻 思考 ✓", "👩‍💻 思考 ✓"},
		{"backslash kept", `C:\temp\x1b`, `C:\temp\x1b`},
		{"clear screen and title", "\x1b[2J\x1b]0;pwned\x07", `\x1b[2J\x1b]0;pwned\x07`},
		{"colour", "\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"newlines and tabs", "row\nfake row\r\tx", `row\nfake row\r\tx`},
		{"nul and del", "a\x00b\x7fc", `a\x00b\x7fc`},
		{"c1 csi", "a\u009b2Jb\u0085", `a\u009b2Jb\u0085`},
		{"bidi override", "evil\u202egnp.exe", `evil\u202egnp.exe`},
		{"bidi embeddings", "\u202a\u202b\u202c\u202d", `\u202a\u202b\u202c\u202d`},
		{"bidi isolates", "\u2066x\u2067y\u2068z\u2069", `\u2066x\u2067y\u2068z\u2069`},
		{"bidi marks", "\u200e\u200f\u061c", `\u200e\u200f\u061c`},
		{"line separators", "a\u2028b\u2029c", `a\u2028b\u2029c`},
		{"invalid utf-8", "ok\xff\xfe ok", `ok\xff\xfe ok`},
		{"c1 as raw byte", "a\x9bb", `a\x9bb`},
		{"cut rune", "ã"[:1] + "z", `\xc3z`},
		{"replacement char kept", "\ufffd", "\ufffd"},
		{"empty", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Escape(c.in); got != c.want {
				t.Errorf("Escape(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestEscapeJSON(t *testing.T) {
	in := map[string]string{
		"event_id": "\x1b[2J\x1b]0;pwned\x07",
		"c1":       "a\u009bb\x7f",
		"bidi":     "evil\u202egnp\u2066\u200f",
		"text":     "Ação não é solução",
		"invalid":  "x\xffy",
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := EscapeJSON(b)
	if i := firstUnsafe(out, utf8.DecodeRune, true); i >= 0 {
		t.Fatalf("unsafe byte at %d in %s", i, out)
	}
	if !strings.Contains(string(out), "Ação não é solução") {
		t.Errorf("accents escaped: %s", out)
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for k, v := range in {
		if k == "invalid" {
			v = "x\ufffdy" // as encoding/json reads it
		}
		if back[k] != v {
			t.Errorf("%s: %q after escaping, want %q", k, back[k], v)
		}
	}
	if plain := []byte(`{"a":"b"}`); &EscapeJSON(plain)[0] != &plain[0] {
		t.Error("JSON with nothing to escape was copied")
	}
}

// The logger escapes agents' text in both formats, message and fields (the
// console format's own colours aside).
func TestLoggerEscapes(t *testing.T) {
	const hostile = "evt \x1b]0;pwned\x07 \u202eevil \u009b2J"
	for _, format := range []string{"json", "console"} {
		var buf bytes.Buffer
		cfg := config.Defaults()
		cfg.LogFormat = format
		log := NewLogger(cfg, &buf)
		log.Warn().Str("event_id", hostile).Msg("dead-lettered " + hostile)
		out := buf.String()
		for _, raw := range []string{"\x1b]", "\x07", "\u202e", "\u009b"} {
			if strings.Contains(out, raw) {
				t.Errorf("%s: %q reaches the log raw: %q", format, raw, out)
			}
		}
		if strings.Count(out, "pwned") != 2 || strings.Count(out, "evil") != 2 {
			t.Errorf("%s: text lost: %q", format, out)
		}
	}
}
