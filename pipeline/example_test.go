package pipeline_test

import (
	"fmt"

	"github.com/noesis-dev/noesis/pipeline"
)

func ExampleDecide() {
	votes := []pipeline.JudgeVote{
		{Name: "VERITAS", Weight: 0.40, Verdict: pipeline.VotePass, Confidence: 0.9},
		{Name: "SOPHIA", Weight: 0.30, Verdict: pipeline.VoteFail, Confidence: 0.8},
		{Name: "DIKĒ", Weight: 0.30, Verdict: pipeline.VotePass, Confidence: 0.7},
	}
	decision, consensus := pipeline.Decide(votes)
	fmt.Printf("%s %.2f\n", decision, consensus)
	// Output: review 0.57
}

func ExampleDecodeThought() {
	_, err := pipeline.DecodeThought([]byte(`{"event_id":"e1","agent_id":"daimon-1","content":{}}`), 0)
	fmt.Println(err)
	// Output: bad input: content.user_input is required
}
