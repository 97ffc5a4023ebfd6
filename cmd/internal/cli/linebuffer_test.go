package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/consumers/natstest"
)

// Info lines are held; a warning is written at once with the lines before
// it, in their order; Close writes what is held.
func TestLineBufferHoldsInfoLines(t *testing.T) {
	var out natstest.Buffer
	lines := NewLineBuffer(&out, time.Hour)
	log := zerolog.New(jsonLogWriter{lines})
	log.Info().Msg("one")
	log.Info().Msg("two")
	if s := out.String(); s != "" {
		t.Fatalf("info lines written at once: %q", s)
	}
	log.Warn().Msg("three")
	if s := out.String(); strings.Count(s, "\n") != 3 || !strings.Contains(s, `"one"`) || strings.Index(s, `"two"`) > strings.Index(s, `"three"`) {
		t.Fatalf("a warning was not written at once after the lines before it: %q", s)
	}
	log.Info().Msg("four")
	if err := lines.Close(); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.HasSuffix(strings.TrimSpace(s), `"message":"four"}`) {
		t.Fatalf("Close did not write the held line: %q", s)
	}
}

// Held info lines are written within the interval, with no line after them.
func TestLineBufferWritesWithinItsInterval(t *testing.T) {
	var out natstest.Buffer
	lines := NewLineBuffer(&out, 10*time.Millisecond)
	defer lines.Close()
	log := zerolog.New(jsonLogWriter{lines})
	log.Info().Msg("one")
	natstest.Eventually(t, 5*time.Second, func() bool { return strings.Contains(out.String(), `"one"`) },
		func() string { return "an info line still held" })
}
