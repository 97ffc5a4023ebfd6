package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// maxThinking is the contract's bound on a chain of thought in an output.
const maxThinking = 4 << 10

// A clipped chain of thought stays within the limit the contract states
// (thinking: at most 4,096 characters), ellipsis included, and never cuts a rune.
func TestClipKeepsTheLimit(t *testing.T) {
	for _, s := range []string{strings.Repeat("a", 5000), strings.Repeat("é", 3000), strings.Repeat("a", 4096), "short"} {
		got := Clip(s, maxThinking)
		if len(got) > maxThinking || !utf8.ValidString(got) {
			t.Errorf("clip of %d bytes: %d bytes, valid UTF-8 %v", len(s), len(got), utf8.ValidString(got))
		}
		if len(s) <= maxThinking && got != s {
			t.Errorf("clip changed a %d-byte string", len(s))
		}
		if len(s) > maxThinking && !strings.HasSuffix(got, "…") {
			t.Errorf("clip of %d bytes does not say it was cut", len(s))
		}
	}
}
