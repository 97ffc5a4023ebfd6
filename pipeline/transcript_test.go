package pipeline

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParagraph(t *testing.T) {
	long := strings.Repeat("The agent checked the copies. ", 12) // 360 bytes of sentences
	cases := []struct {
		name, in, want string
		n              int
	}{
		{"short stays", "It holds.", "It holds.", 200},
		{"first paragraph only", "First part.\n\nSecond part.", "First part.", 200},
		{"blank line with spaces", "One\nline two.\n  \t\nthree", "One line two.", 200},
		{"white space runs become one space", "a\tb\n c   d", "a b c d", 200},
		{"cut at a sentence end", long, strings.TrimSpace(strings.Repeat("The agent checked the copies. ", 6)) + "…", 200},
		{"cut at the verdict's bound", long, strings.TrimSpace(strings.Repeat("The agent checked the copies. ", 5)) + "…", MaxJudgeReasoning},
		{"cut at a word", strings.Repeat("word ", 60), strings.TrimSpace(strings.Repeat("word ", 39)) + "…", 200},
		{"cut on a rune", strings.Repeat("é", 150), strings.Repeat("é", 98) + "…", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Paragraph(c.in, c.n)
			if got != c.want {
				t.Errorf("Paragraph(%q) = %q, want %q", c.in, got, c.want)
			}
			if len(got) > c.n || !utf8.ValidString(got) {
				t.Errorf("%d bytes (bound %d), valid UTF-8 %v", len(got), c.n, utf8.ValidString(got))
			}
		})
	}
}

// A verdict carries the votes; its transcript, the calls, the whole
// reasoning and the thinking. With InlineThinking the verdict keeps the
// thinking too.
func TestVerdictLeavesTheCallsToItsTranscript(t *testing.T) {
	reason := "First sentence of a long reason. " + strings.Repeat("More reasons follow here. ", 20) + "\n\nA second paragraph."
	answer := func(context.Context) (Response, error) {
		return Response{Content: "VERDICT: PASS\nCONFIDENCE: 0.9\nOFFENSE: none\nREASONING: " + reason, Reasoning: strings.Repeat("thinking ", 1000),
			Model: "deepseek-ai/DeepSeek-R1-0528-fast", Provider: "nebius", Target: "nebius:deepseek-ai/DeepSeek-R1-0528-fast", Usage: Usage{PromptTokens: 10, CompletionTokens: 20, TotalTokens: 30}, CostUSD: 0.01}, nil
	}
	th := Thought{EventID: "0b5e7c1a-9f3e-4c2d-8a61-3f2b7d9e4c10", AgentID: "daimon-1", Content: Content{UserInput: "compact the archive"}}
	for _, inline := range []bool{false, true} {
		tr, err := NewTribunal(judgeAnswers(map[string]func(context.Context) (Response, error){"VERITAS": answer, "SOPHIA": answer, "DIKĒ": answer}),
			TribunalConfig{Judges: fastJudges(), InlineThinking: inline})
		if err != nil {
			t.Fatal(err)
		}
		p := &Progress{}
		out, err := tr.Process(WithProgress(context.Background(), p), th)
		if err != nil {
			t.Fatal(err)
		}
		if n, of := p.Answered(); n != 3 || of != 3 {
			t.Errorf("progress %d/%d, want 3/3", n, of)
		}
		v := out.(*Verdict)
		b, _ := json.Marshal(v.Judges)
		for _, leaked := range []string{`"usage"`, `"target"`, `"model"`, `"cost_usd"`, `"pillar"`, `"weighted_vote"`, "A second paragraph"} {
			if strings.Contains(string(b), leaked) {
				t.Errorf("inline %v: the verdict carries %s", inline, leaked)
			}
		}
		whole, _ := json.Marshal(v)
		t.Logf("inline thinking %v: %d bytes", inline, len(whole))
		if !inline && len(whole) > 1536 {
			t.Errorf("three judges at the reasoning's bound: %d bytes, want at most 1536:\n%s", len(whole), whole)
		}
		if got := strings.Contains(string(b), `"thinking":"thinking `); got != inline {
			t.Errorf("inline %v: thinking in the verdict: %v", inline, got)
		}
		if v.Reasoning != "VERITAS PASS 0.90; SOPHIA PASS 0.90; DIKĒ PASS 0.90" {
			t.Errorf("summary %q", v.Reasoning)
		}
		script := v.Transcript()
		if script == nil || len(script.Judges) != 3 || script.EventID != th.EventID || script.Decision != v.Decision {
			t.Fatalf("transcript %+v", script)
		}
		for i, j := range script.Judges {
			if j.Model == "" || j.Target == "" || j.Usage.TotalTokens != 30 || !strings.Contains(j.Reasoning, "A second paragraph") || len(j.Thinking) < 8000 {
				t.Errorf("transcript judge %d: %+v", i, j)
			}
			if len(v.Judges[i].Reasoning) > MaxJudgeReasoning || !strings.HasPrefix(v.Judges[i].Reasoning, "First sentence of a long reason.") {
				t.Errorf("verdict judge %d reasoning %q", i, v.Judges[i].Reasoning)
			}
		}
	}
}
