package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/noesis-dev/noesis/pipeline/internal/text"
)

// CoherenceMode is how coherent the agent's state was, which gates how
// confidently the narrative may speak.
type CoherenceMode string

// The coherence modes of the origin's ConsciousnessBridge.
const (
	ModeFragmented CoherenceMode = "fragmented" // coherence < 0.55, ceiling 0.3
	ModeUncertain  CoherenceMode = "uncertain"  // < 0.65, ceiling 0.5
	ModeTentative  CoherenceMode = "tentative"  // < 0.70, ceiling 0.7
	ModeCoherent   CoherenceMode = "coherent"   // otherwise, ceiling 1.0
)

// CoherenceGate returns the mode and confidence ceiling for a coherence.
func CoherenceGate(coherence float64) (CoherenceMode, float64) {
	switch {
	case coherence < 0.55:
		return ModeFragmented, 0.3
	case coherence < 0.65:
		return ModeUncertain, 0.5
	case coherence < 0.70:
		return ModeTentative, 0.7
	default:
		return ModeCoherent, 1.0
	}
}

var modeGuidance = map[CoherenceMode]string{
	ModeFragmented: "Your state is fragmented: speak in short, hesitant fragments and claim nothing with confidence.",
	ModeUncertain:  "Your state is uncertain: say plainly what you do not know and hedge every claim.",
	ModeTentative:  "Your state is tentative: offer your reading as provisional.",
	ModeCoherent:   "Your state is coherent: speak clearly and directly.",
}

// Narrative is the ConsciousnessBridge's output, published on
// noesis.narratives.<agent_id>.
type Narrative struct {
	Meta
	Narrative         string        `json:"narrative"`
	Mode              CoherenceMode `json:"mode"`
	ConfidenceCeiling float64       `json:"confidence_ceiling"`
	Coherence         float64       `json:"coherence"`
	MetaAwareness     float64       `json:"meta_awareness"`
	Thinking          string        `json:"thinking,omitempty"`
}

// Bridge is the ConsciousnessBridge: it turns a thought into a first-person
// narrative on the FAST tier. A missing coherence counts as 1.0 (coherent);
// a missing depth as 1. Temperature and MaxTokens default to the origin's 0.3
// and 512 when MaxTokens is 0. Safe for concurrent use.
type Bridge struct {
	Completer   Completer
	Temperature float32
	MaxTokens   int
}

// bridgePrompts holds the bridge's system prompt for each coherence mode.
var bridgePrompts = func() map[CoherenceMode]string {
	m := map[CoherenceMode]string{}
	for _, c := range []float64{0, 0.55, 0.65, 0.70} {
		mode, ceiling := CoherenceGate(c)
		m[mode] = "You are the ConsciousnessBridge of a Daimon agent. Write a short first-person introspective narrative " +
			"(at most three sentences) of what the agent is thinking and why. " +
			fmt.Sprintf("Coherence mode: %s (confidence ceiling %.1f). %s ", mode, ceiling, modeGuidance[mode]) +
			dataRule + " Answer with the narrative text only."
	}
	return m
}()

// Messages builds the bridge's prompt for t.
func (b *Bridge) Messages(t *Thought) []Message {
	mode, _ := CoherenceGate(coherenceOf(t))
	return []Message{{Role: RoleSystem, Content: bridgePrompts[mode]}, {Role: RoleUser, Content: quoteThought(t)}}
}

// Process writes the narrative for t. Errors come from the Completer
// (wrapping ErrTransient or ErrPermanent); an empty answer is transient.
func (b *Bridge) Process(ctx context.Context, t Thought) (Output, error) {
	started := time.Now()
	resp, err := b.ask(ctx, &t)
	if err != nil {
		return nil, err
	}
	return b.narrative(&t, resp, started), nil
}

// ask asks for t's narrative. It is a function of its own so that the
// request is not in Process's frame, nor the narrative in this one: the
// delivery's goroutine is deepest under this call (see consumers' Pool),
// and 1 KB less there keeps it within the 16 KiB it is grown to.
//
//go:noinline
func (b *Bridge) ask(ctx context.Context, t *Thought) (Response, error) {
	return ask(ctx, b.Completer, Request{Tier: TierFast, Messages: b.Messages(t), Temperature: b.Temperature, MaxTokens: b.MaxTokens,
		Purpose: "narrative", Priority: t.Priority}, 0.3, 512)
}

// narrative is t's narrative of resp, asked from started.
//
//go:noinline
func (b *Bridge) narrative(t *Thought, resp Response, started time.Time) *Narrative {
	coherence := coherenceOf(t)
	mode, ceiling := CoherenceGate(coherence)
	depth := t.Content.Depth
	if depth == 0 {
		depth = 1
	}
	n := &Narrative{
		Meta:              newMeta(t, StageNarrative, started),
		Narrative:         resp.Content,
		Mode:              mode,
		ConfidenceCeiling: ceiling,
		Coherence:         coherence,
		MetaAwareness:     round4(float64(depth) / 5 * coherence * ceiling),
		Thinking:          text.Clip(resp.Reasoning, maxThinking),
	}
	n.from(resp)
	return n
}

func coherenceOf(t *Thought) float64 {
	if t.Coherence == nil {
		return 1
	}
	return *t.Coherence
}
