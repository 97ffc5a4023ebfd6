package pipeline

import (
	"context"
	"time"

	"github.com/noesis-dev/noesis/pipeline/internal/text"
)

// Analysis is the DEEP tier's output, published on noesis.analyses.<agent_id>.
type Analysis struct {
	Meta
	Analysis string `json:"analysis"`
	Thinking string `json:"thinking,omitempty"`
}

// Analyst writes an optional deep analysis of a thought on the DEEP tier.
// MaxTokens 0 means the origin's defaults: temperature 0.7, 8192 tokens.
// Safe for concurrent use.
type Analyst struct {
	Completer   Completer
	Temperature float32
	MaxTokens   int
}

// Messages builds the analyst's prompt for t.
func (a *Analyst) Messages(t *Thought) []Message {
	sys := "You are the deep analyst of the NOESIS system. Analyse the agent's thought in depth: its assumptions, " +
		"the risks of its action, what it may have missed, and what it should consider next. " + dataRule +
		" Answer in plain prose, at most five short paragraphs."
	return []Message{{Role: RoleSystem, Content: sys}, {Role: RoleUser, Content: quoteThought(t)}}
}

// Process writes the analysis for t; errors as for Bridge.Process.
func (a *Analyst) Process(ctx context.Context, t Thought) (Output, error) {
	started := time.Now()
	resp, err := ask(ctx, a.Completer, Request{Tier: TierDeep, Messages: a.Messages(&t), Temperature: a.Temperature, MaxTokens: a.MaxTokens,
		Purpose: "analysis", Priority: t.Priority}, 0.7, 8192)
	if err != nil {
		return nil, err
	}
	out := Analysis{Meta: newMeta(&t, StageAnalysis, started), Analysis: resp.Content, Thinking: text.Clip(resp.Reasoning, maxThinking)}
	out.from(resp)
	return &out, nil
}
