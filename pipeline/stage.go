package pipeline

import (
	"context"
	"fmt"
	"strings"
)

// Stage names one kind of work done on a thought. Each stage has its own
// durable consumer, its own model tier and its own output subject.
type Stage string

// The stages a thought may ask for.
const (
	StageNarrative Stage = "narrative" // ConsciousnessBridge, FAST tier
	StageTribunal  Stage = "tribunal"  // three judges, REASONING tier
	StageAnalysis  Stage = "analysis"  // optional deep analysis, DEEP tier
)

// Stages lists every stage in a stable order.
var Stages = []Stage{StageNarrative, StageTribunal, StageAnalysis}

// Tier names a class of model: how fast and how deep it thinks.
type Tier string

// The model tiers, after the seed report.
const (
	TierFast      Tier = "fast"
	TierReasoning Tier = "reasoning"
	TierDeep      Tier = "deep"
)

// Tiers lists every tier in a stable order.
var Tiers = []Tier{TierFast, TierReasoning, TierDeep}

// Tier returns the model tier that serves the stage.
func (s Stage) Tier() Tier {
	switch s {
	case StageTribunal:
		return TierReasoning
	case StageAnalysis:
		return TierDeep
	default:
		return TierFast
	}
}

// Valid reports whether s is one of the known stages.
func (s Stage) Valid() bool {
	return s == StageNarrative || s == StageTribunal || s == StageAnalysis
}

// StageForTier returns the stage served by tier t.
func StageForTier(t Tier) (Stage, bool) {
	for _, s := range Stages {
		if s.Tier() == t {
			return s, true
		}
	}
	return "", false
}

// ParseTier parses a tier name (case-insensitive).
func ParseTier(s string) (Tier, error) {
	t := Tier(strings.ToLower(strings.TrimSpace(s)))
	for _, known := range Tiers {
		if t == known {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown tier %q (want fast, reasoning or deep)", s)
}

// ask makes a stage's one model call, req, named in errors by its Purpose.
// A req with no MaxTokens takes temperature and maxTokens, the stage's
// defaults. An empty answer is a transient failure.
func ask(ctx context.Context, c Completer, req Request, temperature float32, maxTokens int) (Response, error) {
	if req.MaxTokens == 0 {
		req.Temperature, req.MaxTokens = temperature, maxTokens
	}
	resp, err := c.Complete(ctx, req)
	if err != nil {
		return resp, fmt.Errorf("%s: %w", req.Purpose, err)
	}
	if resp.Content == "" {
		return resp, fmt.Errorf("%s: %w: model %s returned an empty answer", req.Purpose, ErrTransient, resp.Model)
	}
	return resp, nil
}
