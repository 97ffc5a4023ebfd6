package cli

import (
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// LineBuffer holds a service's log lines briefly and writes them in
// batches: every so often (FlushEvery for serve), when 32 KiB are held,
// and at once for a line at warn or above (and for every line written with
// Write, whose level is not known). A worker writes a line at info for each
// output, two a thought: one write to its log a line was 2.5 % of its
// processor on cache hits. Each write is of whole lines, never a line cut
// in two. A write that fails loses the lines it held, not the next ones. A
// process killed outright loses at most its last interval's info lines;
// Close writes what is held, and every line after it at once. Safe for
// concurrent use.
type LineBuffer struct {
	mu     sync.Mutex
	w      io.Writer
	held   []byte
	closed bool

	stop     chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup
}

// FlushEvery is how long serve's LineBuffer holds an info line at most.
const FlushEvery = 100 * time.Millisecond

// lineBufferSize is how much a LineBuffer holds before it writes.
const lineBufferSize = 32 << 10

// NewLineBuffer returns a LineBuffer writing to w what it holds every
// interval; Close it to write what it holds.
func NewLineBuffer(w io.Writer, every time.Duration) *LineBuffer {
	b := &LineBuffer{w: w, held: make([]byte, 0, lineBufferSize), stop: make(chan struct{})}
	b.done.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-tick.C:
				_ = b.Flush()
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
// lines held before it when l is warn or above (NoLevel, unknown, is above
// them) or the buffer is closed.
func (b *LineBuffer) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var err error
	if len(b.held)+len(p) > lineBufferSize {
		err = b.flushLocked() // the lines held first, whole (lost if that fails; p is still held)
	}
	b.held = append(b.held, p...)
	if l >= zerolog.WarnLevel || b.closed || len(b.held) >= lineBufferSize {
		if ferr := b.flushLocked(); ferr != nil {
			err = ferr
		}
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes the lines held.
func (b *LineBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

// flushLocked writes the lines held and forgets them, written or not.
func (b *LineBuffer) flushLocked() error {
	if len(b.held) == 0 {
		return nil
	}
	_, err := b.w.Write(b.held)
	b.held = b.held[:0]
	if cap(b.held) > 4*lineBufferSize { // a long line's buffer is not kept
		b.held = make([]byte, 0, lineBufferSize)
	}
	return err
}

// Close stops the periodic writes and writes the lines held; lines written
// after it are written at once. A second Close does nothing more.
func (b *LineBuffer) Close() error {
	b.stopOnce.Do(func() { close(b.stop) })
	b.done.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.flushLocked()
}
