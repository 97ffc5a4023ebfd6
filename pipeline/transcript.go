package pipeline

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/noesis-dev/noesis/pipeline/internal/text"
)

// MaxJudgeReasoning bounds a judge's reasoning in a verdict: its first
// paragraph, its runs of white space made one space, cut at the last
// sentence end within the bound (or, with none past half of it, at the
// bound) and ended with "…" when cut. The judge's whole reasoning is in the
// tribunal's Transcript. 160 bytes is a sentence or two, and keeps a
// three-judge verdict whose judges all write that much within 1.5 KiB
// (TestVerdictIsReadableAtAGlance measures it through the pipeline).
const MaxJudgeReasoning = 160

// MaxAbstainReason bounds an abstention's reason in a verdict (a failed
// call's error can run long); the Transcript keeps it whole.
const MaxAbstainReason = 160

// maxTranscriptThinking bounds one judge's chain of thought in a Transcript:
// 16 KiB, about 4,000 tokens, past the thinking of ~99 % of the answers of a
// reasoning model that thinks a median 700 tokens. An inline copy in the
// verdict (TribunalConfig.InlineThinking) keeps the contract's 4 KiB.
const maxTranscriptThinking = 16 << 10

// Transcript is how a tribunal reached its verdict: each judge's model call
// (its model, provider, target, usage, cost, whether the cache or a fallback
// answered), its reasoning and abstention reason in full, and its chain of
// thought. The worker stores it before the verdict it explains, on
// noesis.transcripts.<agent_id>, which has its own retention (see
// docs/contract.md). A verdict carries the decision and each judge's vote in
// a few lines; the transcript carries the rest.
type Transcript struct {
	EventID       string        `json:"event_id"`
	AgentID       string        `json:"agent_id"`
	Stage         Stage         `json:"stage"`
	Decision      Decision      `json:"decision"`
	PromptVersion string        `json:"prompt_version"`
	CreatedAt     time.Time     `json:"created_at"`
	Judges        []JudgeRecord `json:"judges"`
}

// JudgeRecord is one judge's part in a Transcript.
type JudgeRecord struct {
	Name          string  `json:"name"`
	Pillar        string  `json:"pillar"`
	Verdict       Vote    `json:"verdict"`
	Weight        float64 `json:"weight"`
	WeightedVote  float64 `json:"weighted_vote"`
	Reasoning     string  `json:"reasoning"`
	AbstainReason string  `json:"abstain_reason,omitempty"`
	Model         string  `json:"model,omitempty"`
	Provider      string  `json:"provider,omitempty"`
	Target        string  `json:"target,omitempty"`
	Fallback      bool    `json:"fallback,omitempty"`
	ColdStart     bool    `json:"cold_start,omitempty"`
	Hedged        bool    `json:"hedged,omitempty"`
	CostUSD       float64 `json:"cost_usd,omitempty"`
	Cached        bool    `json:"cached"`
	AskedAgain    bool    `json:"asked_again,omitempty"`
	LatencyMS     int64   `json:"latency_ms"`
	Usage         Usage   `json:"usage"`
	Thinking      string  `json:"thinking,omitempty"`
}

// transcribe writes v's transcript from its judges' votes, whole, and then
// makes the votes a verdict's: each reasoning one bounded paragraph, each
// abstention reason bounded, the thinking left to the transcript unless
// inline says to keep it (clipped to the contract's 4 KiB).
func transcribe(v *Verdict, inline bool) {
	tr := &Transcript{EventID: v.EventID, AgentID: v.AgentID, Stage: v.Stage, Decision: v.Decision,
		PromptVersion: v.PromptVersion, CreatedAt: v.CreatedAt, Judges: make([]JudgeRecord, len(v.Judges))}
	for i := range v.Judges {
		j := &v.Judges[i]
		tr.Judges[i] = JudgeRecord{Name: j.Name, Pillar: j.Pillar, Verdict: j.Verdict, Weight: j.Weight, WeightedVote: j.WeightedVote, Reasoning: j.Reasoning, AbstainReason: j.AbstainReason,
			Model: j.Model, Provider: j.Provider, Target: j.Target, Fallback: j.Fallback, ColdStart: j.ColdStart, Hedged: j.Hedged,
			CostUSD: j.CostUSD, Cached: j.Cached, AskedAgain: j.AskedAgain, LatencyMS: j.LatencyMS, Usage: j.Usage, Thinking: j.thinking}
		if j.Offense == "" { // an abstaining judge named none
			j.Offense = OffenseNone
		}
		j.Reasoning = Paragraph(j.Reasoning, MaxJudgeReasoning)
		j.AbstainReason = Paragraph(j.AbstainReason, MaxAbstainReason)
		j.Thinking = ""
		if inline {
			j.Thinking = text.Clip(tr.Judges[i].Thinking, maxThinking)
		}
	}
	v.transcript = tr
}

// Paragraph returns s's first paragraph (up to its first blank line), with
// every run of white space made one space, in at most n bytes: when longer,
// it is cut after the last sentence end (". ", "! ", "? ") that leaves at
// least half of n, else at a word boundary, else on a rune boundary, and
// ends with "…" (counted in the n). Safe for concurrent use.
func Paragraph(s string, n int) string {
	s = strings.TrimSpace(s)
	if i := blankLine(s); i >= 0 {
		s = s[:i]
	}
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) && r != ' ' }) || strings.Contains(s, "  ") {
		s = strings.Join(strings.Fields(s), " ")
	}
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	room := max(0, n-len(ellipsis))
	cut := room
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	head := s[:cut]
	if i := strings.LastIndexAny(head, ".!?"); i >= room/2 && s[i+1] == ' ' {
		return head[:i+1] + ellipsis
	}
	if i := strings.LastIndexByte(head, ' '); i >= room/2 {
		return head[:i] + ellipsis
	}
	return head + ellipsis
}

// blankLine returns where s's first blank line begins, or -1.
func blankLine(s string) int {
	for off := 0; ; {
		i := strings.IndexByte(s[off:], '\n')
		if i < 0 {
			return -1
		}
		start := off + i
		j := strings.IndexByte(s[start+1:], '\n')
		if j < 0 {
			return -1 // s is trimmed: its last line is not blank
		}
		if strings.TrimSpace(s[start+1:start+1+j]) == "" {
			return start
		}
		off = start + 1
	}
}
