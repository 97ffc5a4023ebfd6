package cli

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// flaky fails its first write (a full disk, a collector's pipe that
// stalled once), then takes every write.
type flaky struct {
	mu     sync.Mutex
	failed bool
	b      strings.Builder
}

func (f *flaky) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failed {
		f.failed = true
		return 0, errors.New("no space left on device")
	}
	return f.b.Write(p)
}

func (f *flaky) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.b.String()
}

// A failed write loses the lines it held, not the next ones (a
// bufio.Writer's error is sticky: it lost every line after).
func TestLineBufferWritesAgainAfterAFailedWrite(t *testing.T) {
	out := &flaky{}
	lines := NewLineBuffer(out, time.Hour)
	log := zerolog.New(jsonLogWriter{lines})
	log.Warn().Msg("lost") // the failed write
	log.Warn().Msg("after")
	log.Error().Msg("an error, later")
	_ = lines.Close()
	if s := out.String(); !strings.Contains(s, `"after"`) || !strings.Contains(s, `"an error, later"`) {
		t.Fatalf("after one failed write, nothing more is written: %q", s)
	}
}

// Close may be called twice, as the project's other Close methods may.
func TestLineBufferCloseTwice(t *testing.T) {
	lines := NewLineBuffer(&flaky{failed: true}, time.Hour)
	_ = lines.Close()
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("a second Close panicked: %v", v)
		}
	}()
	_ = lines.Close()
}

// An info line logged after Close (a goroutine still logging as serve
// returns) is written at once: no ticker is left to write it.
func TestLineBufferWritesLinesAfterClose(t *testing.T) {
	out := &flaky{failed: true}
	lines := NewLineBuffer(out, time.Hour)
	log := zerolog.New(jsonLogWriter{lines})
	_ = lines.Close()
	log.Info().Msg("late")
	if s := out.String(); !strings.Contains(s, `"late"`) {
		t.Fatalf("an info line logged after Close was never written: %q", s)
	}
}

// Each write is of whole lines: another writer of the same stderr (the
// runtime, another logger) never lands in the middle of a JSON line.
func TestLineBufferWritesEachLineWhole(t *testing.T) {
	var w recorder
	lines := NewLineBuffer(&w, time.Hour)
	log := zerolog.New(jsonLogWriter{lines})
	for range 40 {
		log.Info().Str("pad", strings.Repeat("x", 1000)).Msg("line")
	}
	_ = lines.Close()
	for i, p := range w.writes {
		if !strings.HasSuffix(p, "\n") {
			t.Fatalf("write %d of %d ends in the middle of a line: ...%q", i, len(w.writes), p[len(p)-20:])
		}
	}
}

type recorder struct{ writes []string }

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}
