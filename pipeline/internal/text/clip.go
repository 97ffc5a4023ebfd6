package text

import "unicode/utf8"

// Clip cuts s to at most n bytes, on a rune boundary, ending a cut string
// with "…" (counted in the n), so a contract's maxLength holds.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := max(0, n-len(ellipsis))
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
