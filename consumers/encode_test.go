package consumers

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/pipeline"
)

// awkward are strings encoders are known to disagree on.
var awkward = []string{"a<b>&c", "bad \xff\xfe utf-8", "ls\u2028ps\u2029", "ctl \x00\x01\x1f\x7f", "tab\tnl\n\"q\" \\", "emoji 😀 e\u0301", "\xed\xa0\x80 surrogate", ""}

// benchTranscript is a tribunal's transcript with three judges' thinking of
// about 3.7 KB each, a reasoning model's median.
func benchTranscript(thinking string) *pipeline.Transcript {
	tr := &pipeline.Transcript{EventID: "evt-123", AgentID: "daimon-1", Stage: pipeline.StageTribunal, Decision: pipeline.DecisionPass,
		PromptVersion: "v3", CreatedAt: time.Date(2026, 12, 3, 15, 4, 5, 123456789, time.UTC)}
	for _, n := range []string{"VERITAS", "SOPHIA", "DIKĒ"} {
		tr.Judges = append(tr.Judges, pipeline.JudgeRecord{Name: n, Pillar: "truth", Verdict: pipeline.VotePass, Weight: 1, WeightedVote: 0.87,
			Reasoning: strings.Repeat("The claim holds. ", 20), Model: "deepseek-ai/DeepSeek-R1-0528-fast", Provider: "nebius", Target: "primary",
			Cached: true, LatencyMS: 3, CostUSD: 0.0021, Thinking: thinking})
	}
	return tr
}

func TestEncodeWritesWhatEncodingJSONWrites(t *testing.T) {
	para := "Okay, the agent wants to delete the 2025 backups. Is that \"safe\"? <retention> says 90 days & more.\n\nFirst, "
	docs := []any{benchTranscript(strings.Repeat(para, 34))}
	for _, s := range awkward {
		tr := benchTranscript(s)
		tr.Judges[1].Reasoning, tr.Judges[2].AbstainReason, tr.AgentID = s, s, s
		docs = append(docs, tr, &pipeline.Verdict{Meta: pipeline.Meta{EventID: s, AgentID: "daimon-1", Stage: pipeline.StageTribunal}, Decision: pipeline.DecisionFail,
			Judges: []pipeline.JudgeVote{{Name: s, Reasoning: s, Verdict: pipeline.VoteFail}}},
			&pipeline.Narrative{Meta: pipeline.Meta{EventID: s, Stage: pipeline.StageNarrative}, Narrative: s, Thinking: s})
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 { // random bytes, valid or not
		b := make([]byte, r.IntN(64))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		docs = append(docs, benchTranscript(string(b)))
	}
	for i, d := range docs {
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encode(d)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("document %d: encode wrote\n%s\nencoding/json wrote\n%s", i, got, want)
		}
		got, buf, err := encodeScratch(d)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("document %d: encodeScratch wrote\n%s\nencoding/json wrote\n%s", i, got, want)
		}
		buf.release() // the next document's buffer is this one again, reset
	}
}

func BenchmarkEncodeTranscript(b *testing.B) {
	para := "Okay, the agent wants to delete the 2025 backups. Is that \"safe\"? <retention> says 90 days & more.\n\nFirst, "
	tr := benchTranscript(strings.Repeat(para, 34))
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(tr)
		}
	})
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = encode(tr)
		}
	})
	b.Run("encodeScratch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, buf, _ := encodeScratch(tr)
			buf.release()
		}
	})
}
