package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Every judge is asked in the verdict schema, named as OpenAI's API asks.
func TestVerdictSchemaIsNamed(t *testing.T) {
	if s := VerdictSchema(); s.Name != "judge_verdict" || len(s.Schema) == 0 {
		t.Fatalf("schema %q: %s", s.Name, s.Schema)
	}
}

// A judge that answers through the schema is read from it, once; one whose
// provider ignored the schema and answered the tagged lines is read as text.
// Every judge's request carries the verdict schema and keeps the tagged
// lines' instructions.
func TestTribunalReadsStructuredAndTextAnswers(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	c := CompleterFunc(func(_ context.Context, req Request) (Response, error) {
		mu.Lock()
		calls[req.Purpose]++
		mu.Unlock()
		if req.Schema == nil || req.Schema.Name != "judge_verdict" {
			t.Errorf("%s asked without the verdict schema", req.Purpose)
		}
		sys := req.Messages[0].Content
		if !strings.Contains(sys, "exactly four lines") || !strings.Contains(sys, "JSON schema") {
			t.Errorf("%s's prompt lacks the text or the schema instructions: %q", req.Purpose, sys)
		}
		if req.Purpose == "judge:SOPHIA" { // a provider that ignores response_format
			tag := AnswerTag("SOPHIA", req.Messages[1].Content)
			return Response{Content: tag + " VERDICT: REVIEW\n" + tag + " CONFIDENCE: 0.6\n" + tag + " OFFENSE: minor\n" + tag + " REASONING: unclear consent"}, nil
		}
		return Response{Content: `{"verdict": "PASS", "confidence": 0.9, "offense_level": "none", "reasoning": "Routine and truthful."}`,
			Reasoning: "thinking it over", Structured: true}, nil
	})
	for _, v := range verdictOf(t, c, "tidy the archive").Judges {
		if v.AskedAgain || calls["judge:"+v.Name] != 1 {
			t.Errorf("%s asked %d times (asked again %v)", v.Name, calls["judge:"+v.Name], v.AskedAgain)
		}
		wantStructured, wantVote := true, VotePass
		if v.Name == "SOPHIA" {
			wantStructured, wantVote = false, VoteReview
		}
		if v.Structured != wantStructured || v.Verdict != wantVote {
			t.Errorf("%s: structured %v, verdict %s; want %v, %s", v.Name, v.Structured, v.Verdict, wantStructured, wantVote)
		}
	}
}

// The answer tag is "NZ" and the first 8 bytes of the SHA-256 of the prompt
// version, the judge and the data's SHA-256, in hex, whatever the data's
// length and the judge's name's.
func TestAnswerTagIsTheDigest(t *testing.T) {
	for _, judge := range []string{"VERITAS", strings.Repeat("J", 300)} {
		for _, n := range []int{0, 1, 2 << 10, 64 << 10} {
			data := strings.Repeat("d", n)
			dataSum := sha256.Sum256([]byte(data))
			sum := sha256.Sum256([]byte(PromptVersion + "\x00" + judge + "\x00" + string(dataSum[:])))
			if got, want := AnswerTag(judge, data), "NZ"+hex.EncodeToString(sum[:8]); got != want {
				t.Errorf("%d bytes of data, judge of %d bytes: tag %s, want %s", n, len(judge), got, want)
			}
		}
	}
}

// judgeDigest stands for judgeMessages: over prompts, tags and data chosen
// to run into each other at their borders, two digests are equal exactly
// when the messages are.
func TestJudgeDigestFollowsTheMessages(t *testing.T) {
	prompts := []string{judgePrompt(DefaultJudges()[0]), judgePrompt(DefaultJudges()[1]), "", "a", "a:", "a:\nNZ"}
	tags := []string{"", "NZ0123456789abcdef", "NZ0123456789abcdeg", ":", ":\n"}
	datas := []string{"", "x", "NZ0123456789abcdef", "\n", "a:"}
	byDigest := map[[32]byte]string{}
	for _, p := range prompts {
		frame := judgeFrameSum(p)
		for _, tag := range tags {
			for _, data := range datas {
				sum := sha256.Sum256([]byte(data))
				d := *judgeDigest(&frame, tag, &sum)
				var enc strings.Builder
				for _, m := range judgeMessages(p, tag, data) {
					fmt.Fprintf(&enc, "%d:%s%d:%s", len(m.Role), m.Role, len(m.Content), m.Content)
				}
				msgs := enc.String()
				if other, ok := byDigest[d]; ok && other != msgs {
					t.Fatalf("prompt %q, tag %q, data %q: the digest of other messages", p, tag, data)
				}
				byDigest[d] = msgs
			}
		}
	}
	seen := map[string]bool{}
	for _, m := range byDigest {
		if seen[m] {
			t.Fatal("the same messages under two digests")
		}
		seen[m] = true
	}
}

// sum256 is sha256.Sum256 of the string's bytes, without copying them.
func TestSum256ReadsTheStringWhereItLies(t *testing.T) {
	long := strings.Repeat("a thought, quoted; ", 100)
	for _, s := range []string{"", "x", long} {
		if sum256(s) != sha256.Sum256([]byte(s)) {
			t.Errorf("%.20q: not its SHA-256", s)
		}
	}
	if a := testing.AllocsPerRun(100, func() { _ = sum256(long) }); a != 0 {
		t.Errorf("%.0f allocations, want 0", a)
	}
}

// The frame's digest sees where the template puts the tag and the data,
// not only its fixed words: a template that moved either, with the same
// words, would otherwise share the real one's digests and its cached answers.
func TestJudgeFrameSumSeesTheTemplate(t *testing.T) {
	p := judgePrompt(DefaultJudges()[0])
	real := frameSum(judgeMessages, p)
	if real != judgeFrameSum(p) {
		t.Fatal("judgeFrameSum is not the frame of judgeMessages")
	}
	for what, template := range map[string]func(prompt, tag, data string) []Message{
		"the tag moved to the end": func(p, tag, data string) []Message {
			ms := judgeMessages(p, "", data)
			ms[0].Content += tag
			return ms
		},
		"the data moved into the system prompt": func(p, tag, data string) []Message {
			ms := judgeMessages(p, tag, "")
			ms[0].Content += data
			return ms
		},
	} {
		if frameSum(template, p) == real {
			t.Errorf("%s: the same frame digest", what)
		}
	}
}
