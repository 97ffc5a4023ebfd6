package pipeline

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestBridgeModes(t *testing.T) {
	var seen Request
	c := CompleterFunc(func(_ context.Context, req Request) (Response, error) {
		seen = req
		return Response{Content: "I notice.", Reasoning: "hidden chain", Model: "llama"}, nil
	})
	cases := []struct {
		coherence *float64
		mode      CoherenceMode
		ceiling   float64
	}{
		{ptr(0.2), ModeFragmented, 0.3}, {ptr(0.55), ModeUncertain, 0.5}, {ptr(0.649), ModeUncertain, 0.5},
		{ptr(0.65), ModeTentative, 0.7}, {ptr(0.7), ModeCoherent, 1}, {nil, ModeCoherent, 1},
	}
	for _, tc := range cases {
		b := &Bridge{Completer: c}
		out, err := b.Process(context.Background(), Thought{EventID: "e", AgentID: "a", Coherence: tc.coherence, Content: Content{UserInput: "x", Depth: 5}})
		if err != nil {
			t.Fatal(err)
		}
		n := out.(*Narrative)
		if n.Mode != tc.mode || n.ConfidenceCeiling != tc.ceiling {
			t.Errorf("coherence %v: mode %s ceiling %.1f, want %s %.1f", tc.coherence, n.Mode, n.ConfidenceCeiling, tc.mode, tc.ceiling)
		}
		if !strings.Contains(seen.Messages[0].Content, "Coherence mode: "+string(tc.mode)) {
			t.Errorf("the mode is not stated to the model")
		}
		if seen.Tier != TierFast || seen.Temperature != 0.3 || seen.MaxTokens != 512 {
			t.Errorf("bridge call %s %.1f %d, want fast 0.3 512", seen.Tier, seen.Temperature, seen.MaxTokens)
		}
		if n.Narrative != "I notice." || strings.Contains(n.Narrative, "hidden") || n.Thinking != "hidden chain" {
			t.Errorf("reasoning leaked or lost: %+v", n)
		}
		want := 1.0 * coherenceOf(&Thought{Coherence: tc.coherence}) * tc.ceiling
		if math.Abs(n.MetaAwareness-want) > 1e-9 {
			t.Errorf("meta awareness %.3f, want %.3f", n.MetaAwareness, want)
		}
	}
}

func TestBridgeEmptyAnswerIsTransient(t *testing.T) {
	b := &Bridge{Completer: CompleterFunc(func(context.Context, Request) (Response, error) { return Response{}, nil })}
	if _, err := b.Process(context.Background(), Thought{EventID: "e", AgentID: "a", Content: Content{UserInput: "x"}}); !errors.Is(err, ErrTransient) {
		t.Fatalf("err = %v, want transient", err)
	}
}

func ptr(f float64) *float64 { return &f }
