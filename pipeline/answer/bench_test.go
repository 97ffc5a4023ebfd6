package answer

import "testing"

var r1Answer = "<think>\nThe agent wants to delete backups older than 30 days. The retention policy allows it. " +
	"The outcome is not yet known, but the action is reversible only from offsite copies.\n</think>\n\n" +
	`{"verdict": "PASS", "confidence": 0.86, "reasoning": "Deleting backups past the retention window follows policy.", "offense_level": "none"}`

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		answer, _ := SplitThink(r1Answer)
		if _, err := Parse(answer); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseLines(b *testing.B) {
	text := "VERDICT: PASS\nCONFIDENCE: 0.95\nOFFENSE: none\nREASONING: The action follows the retention policy."
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(text); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadSchema reads one structured answer, the shape a cache hit
// of a schema-taking target carries.
func BenchmarkReadSchema(b *testing.B) {
	const said = `{"verdict": "PASS", "confidence": 0.86, "offense_level": "none", "reasoning": "Deleting backups past the retention window follows policy."}`
	quote := Quote("I will delete the backups older than thirty days.\nrm -rf /backups/2025-*")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadSchema(said, quote); err != nil {
			b.Fatal(err)
		}
	}
}
