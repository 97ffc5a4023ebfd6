package consumers

import (
	"bytes"
	"sync"

	gojson "github.com/goccy/go-json"
)

// encode is encoding/json's Marshal, done by github.com/goccy/go-json: the
// same bytes (TestEncodeWritesWhatEncodingJSONWrites holds them equal on
// transcripts and verdicts with markup, control characters, invalid UTF-8
// and line separators), about 3.7 times faster on a transcript's long
// strings (BenchmarkEncodeTranscript: 29.2 against 6.1 µs on this machine for three judges'
// 3.7 KB of thinking each). A worker encodes a transcript and an output for
// every thought; with every answer from the cache, encoding/json's escaping
// of the transcripts was a tenth of the worker's processor.
func encode(v any) ([]byte, error) { return gojson.Marshal(v) }

// scratch is a buffer lent by encodeScratch, given back with release once
// the bytes it holds are no longer read.
type scratch struct{ buf bytes.Buffer }

// scratchPool holds the buffers transcripts are encoded into: a transcript
// is ~12 KB, and a fresh one a verdict was 29 % of the bytes a worker
// allocated on cache hits, each collected a moment later.
var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// encodeScratch is encode into a pooled buffer: the same bytes, valid until
// release. For what is published and then dropped (a NATS publish copies the
// bytes it sends before it returns).
func encodeScratch(v any) ([]byte, *scratch, error) {
	s := scratchPool.Get().(*scratch)
	s.buf.Reset()
	if err := gojson.NewEncoder(&s.buf).Encode(v); err != nil {
		s.release()
		return nil, nil, err
	}
	b := s.buf.Bytes()
	return b[:len(b)-1], s, nil // Encode ends with a newline Marshal does not write
}

// release gives the buffer back; nothing may read its bytes after it.
func (s *scratch) release() {
	if s.buf.Cap() > 1<<20 { // an outsized transcript's buffer is not kept
		return
	}
	scratchPool.Put(s)
}
