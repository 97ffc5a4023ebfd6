package config_test

import (
	"strings"
	"testing"

	"github.com/noesis-dev/noesis/config"
	"github.com/noesis-dev/noesis/consumers"
	"github.com/noesis-dev/noesis/consumers/review"
)

// One agent's share of NOESIS_DLQ by default: its letters of the four
// kinds (input, and each stage) fill at most an eighth of the stream at the
// largest letters, 97 of each; a setting replaces it; a negative one is
// refused, named.
func TestAgentDeadLettersBound(t *testing.T) {
	defaults := config.Defaults()
	for _, s := range consumers.StreamConfigs(defaults.Streams()) {
		if s.Name != consumers.StreamDLQ {
			continue
		}
		largest := int64(defaults.MaxThoughtBytes + consumers.LetterHeaderAllowance)
		if got := s.MaxMsgsPerSubject; got != 97 || 4*got*largest > s.MaxBytes/8 {
			t.Fatalf("one agent may hold %d letters of each kind, of up to %d B, in a %d B stream; want 97, an eighth of it in all", got, largest, s.MaxBytes)
		}
	}
	t.Setenv("NOESIS_AGENT_MAX_DEAD_LETTERS", "500")
	c, err := config.Load("", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Streams().MaxDeadLettersPerAgent; got != 500 {
		t.Errorf("bound %d; want 500", got)
	}
	t.Setenv("NOESIS_AGENT_MAX_DEAD_LETTERS", "-1")
	if _, err := config.Load("", false); err == nil || !strings.Contains(err.Error(), "NOESIS_AGENT_MAX_DEAD_LETTERS: want 0") {
		t.Errorf("-1: %v", err)
	}
}

// The reviews one agent may have waiting: review.DefaultMaxPerAgent unless
// set; a negative bound is refused, named.
func TestAgentReviewsBound(t *testing.T) {
	if got := config.Defaults().AgentMaxReviews; got != 0 {
		t.Fatalf("default %d; want 0 (review.DefaultMaxPerAgent, %d)", got, review.DefaultMaxPerAgent)
	}
	t.Setenv("NOESIS_AGENT_MAX_REVIEWS", "40")
	c, err := config.Load("", false)
	if err != nil || c.AgentMaxReviews != 40 {
		t.Fatalf("bound %d (%v); want 40", c.AgentMaxReviews, err)
	}
	t.Setenv("NOESIS_AGENT_MAX_REVIEWS", "-3")
	if _, err := config.Load("", false); err == nil || !strings.Contains(err.Error(), "NOESIS_AGENT_MAX_REVIEWS: want 0 (512) or more, got -3") {
		t.Errorf("-3: %v", err)
	}
}
