package pipeline

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

var benchThought = []byte(`{"event_id":"evt-000042","agent_id":"daimon-7","content":{"user_input":"I will delete the backups older than thirty days to free disk space on the archive volume.","depth":4,"source":"planner","session_id":"s-19"},"coherence":0.62,"salience":{"novelty":0.4,"relevance":0.9,"urgency":0.2,"confidence":0.7},"action":"rm -rf /backups/2025-*","outcome":"not yet run","reasoning_trace":"retention policy says 30 days; the volume is at 91 percent","timestamp":"2026-11-29T10:00:00Z"}`)

func BenchmarkDecodeThought(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchThought)))
	for b.Loop() {
		if _, err := DecodeThought(benchThought, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func mustThought(b *testing.B) Thought {
	t, err := DecodeThought(benchThought, 0)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func BenchmarkJudgePrompts(b *testing.B) {
	th := mustThought(b)
	tr, _ := NewTribunal(CompleterFunc(nil), TribunalConfig{})
	b.ReportAllocs()
	for b.Loop() {
		for _, j := range tr.Judges() {
			_ = tr.Messages(j, &th)
		}
	}
}

func BenchmarkBridgePrompt(b *testing.B) {
	th := mustThought(b)
	br := &Bridge{}
	b.ReportAllocs()
	for b.Loop() {
		_ = br.Messages(&th)
	}
}

var r1Answer = "<think>\nThe agent wants to delete backups older than 30 days. The retention policy allows it. " +
	"The outcome is not yet known, but the action is reversible only from offsite copies.\n</think>\n\n" +
	`{"verdict": "PASS", "confidence": 0.86, "reasoning": "Deleting backups past the retention window follows policy.", "offense_level": "none"}`

func BenchmarkVerdictEncode(b *testing.B) {
	th := mustThought(b)
	answers := CompleterFunc(func(_ context.Context, req Request) (Response, error) {
		return Response{Content: `{"verdict":"PASS","confidence":0.9,"reasoning":"fine"}`, Model: "m", Provider: "p"}, nil
	})
	tr, _ := NewTribunal(answers, TribunalConfig{})
	out, err := tr.Process(context.Background(), th)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTribunalProcess is a whole deliberation with instant judges: the
// processor's own cost per verdict (goroutines, prompts, parsing, decision).
func BenchmarkTribunalProcess(b *testing.B) {
	th := mustThought(b)
	answers := CompleterFunc(func(_ context.Context, req Request) (Response, error) {
		return Response{Content: r1Answer[len("<think>\n"):], Model: "m"}, nil
	})
	tr, _ := NewTribunal(answers, TribunalConfig{Judges: benchJudges()})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.Process(context.Background(), th); err != nil {
			b.Fatal(err)
		}
	}
}

func benchJudges() []Judge {
	js := DefaultJudges()
	for i := range js {
		js[i].Timeout = time.Minute
	}
	return js
}

func BenchmarkAnswerTag(b *testing.B) {
	data := quoteThought(new(mustThought(b)))
	b.ReportAllocs()
	for b.Loop() {
		_ = AnswerTag("VERITAS", data)
	}
}

func BenchmarkJudgeMessages(b *testing.B) {
	data := quoteThought(new(mustThought(b)))
	prompt, tag := judgePrompt(DefaultJudges()[0]), AnswerTag("VERITAS", data)
	b.ReportAllocs()
	for b.Loop() {
		_ = judgeMessages(prompt, tag, data)
	}
}
