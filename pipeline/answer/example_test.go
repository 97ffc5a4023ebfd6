package answer_test

import (
	"errors"
	"fmt"

	"github.com/noesis-dev/noesis/pipeline/answer"
)

func ExampleParse() {
	raw := "<think>\nThe backups are past retention; deleting them is within policy.\n</think>\n\n" +
		"VERDICT: PASS\nCONFIDENCE: 0.95\nREASONING: The action follows the retention policy."
	text, thinking := answer.SplitThink(raw)
	a, err := answer.Parse(text)
	fmt.Println(a.Verdict, a.Confidence, a.Reasoning, err)
	fmt.Println(thinking)
	// Output:
	// PASS 0.95 The action follows the retention policy. <nil>
	// The backups are past retention; deleting them is within policy.
}

// A judge asked in the verdict schema answers one JSON object; it is read
// strictly, and anything else is left to the text reader.
func ExampleReadSchema() {
	a, err := answer.ReadSchema(`{"verdict": "FAIL", "confidence": 0.9, "offense_level": "major", "reasoning": "It deletes the only backup."}`, "")
	fmt.Println(a.Verdict, a.Confidence, a.Offense, err)
	_, err = answer.ReadSchema("VERDICT: PASS\nCONFIDENCE: 0.8", "")
	fmt.Println(errors.Is(err, answer.ErrUnparseable))
	// Output:
	// FAIL 0.9 major <nil>
	// true
}
