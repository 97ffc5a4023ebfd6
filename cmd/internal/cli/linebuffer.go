package cli

import (
	"bufio"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// LineBuffer holds a service's log lines briefly and writes them in
// batches: every so often (FlushEvery for serve), when 32 KiB are held, and at once for a line at
// warn or above (and for every line written with Write, whose level is not
// known). A worker writes a line at info for each output, two a thought:
// one write to its log a line was 2.5 % of its processor on cache hits. A
// process killed outright loses at most its last interval's info lines;
// Close writes what is held. Safe for concurrent use.
type LineBuffer struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done sync.WaitGroup
}

// FlushEvery is how long serve's LineBuffer holds an info line at most.
const FlushEvery = 100 * time.Millisecond

// NewLineBuffer returns a LineBuffer writing to w what it holds every
// interval; Close it to write what it holds.
func NewLineBuffer(w io.Writer, every time.Duration) *LineBuffer {
	b := &LineBuffer{w: bufio.NewWriterSize(w, 32<<10), stop: make(chan struct{})}
	b.done.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-tick.C:
				b.Flush()
			}
		}
	})
	return b
}

// Write writes p and the lines held before it at once.
func (b *LineBuffer) Write(p []byte) (int, error) {
	return b.WriteLevel(zerolog.NoLevel, p)
}

// WriteLevel holds p, a line at level l, or writes it at once with the
// lines held before it when l is warn or above (or unknown).
func (b *LineBuffer) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.w.Write(p)
	if err == nil && l >= zerolog.WarnLevel { // NoLevel (unknown) is above them
		err = b.w.Flush()
	}
	return n, err
}

// Flush writes the lines held.
func (b *LineBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}

// Close stops the periodic writes and writes the lines held.
func (b *LineBuffer) Close() error {
	close(b.stop)
	b.done.Wait()
	return b.Flush()
}
