package answer

import (
	"hash/maphash"
	"strings"
	"sync"
)

// Memo remembers how cached answers were read. A cached answer is the
// same text read with the same tag and quote each time its thought comes
// again, and reading a reasoning model's answer is the tribunal's largest
// cost on a cache hit, so a hit is read once. Only readable answers are
// kept; the full inputs are compared on a hit, so a hash collision cannot
// return another answer's reading. Bounded: when full, it starts again.
// Safe for concurrent use.
type Memo struct {
	seed    maphash.Seed
	mu      sync.Mutex
	entries map[uint64]memoEntry
	max     int
}

type memoEntry struct {
	answer, reasoning, tag string
	quote                  Quote
	read                   JudgeAnswer
}

// NewMemo returns a memo of at most max readings.
func NewMemo(max int) *Memo {
	return &Memo{seed: maphash.MakeSeed(), entries: map[uint64]memoEntry{}, max: max}
}

func (m *Memo) key(answer, reasoning, tag string, quote Quote) uint64 {
	var h maphash.Hash
	h.SetSeed(m.seed)
	for _, s := range []string{answer, reasoning, tag, string(quote)} {
		h.WriteString(s)
		h.WriteByte(0)
	}
	return h.Sum64()
}

// Read returns Read(answer, reasoning, tag, quote), from memory when it was
// read before.
func (m *Memo) Read(answer, reasoning, tag string, quote Quote) (JudgeAnswer, error) {
	return m.read(answer, reasoning, tag, quote, func(answer, reasoning string) (JudgeAnswer, error) { return Read(answer, reasoning, tag, quote) })
}

// schemaTag stands for the tag of a reading in the verdict schema, which
// has none: no answer tag holds a NUL.
const schemaTag = "\x00schema"

// ReadSchema returns ReadSchema(answer, quote), from memory when it was
// read before: every cached judge answer of a thought asked again is read
// again, ~1 µs each.
func (m *Memo) ReadSchema(answer string, quote Quote) (JudgeAnswer, error) {
	return m.read(answer, "", schemaTag, quote, func(answer, _ string) (JudgeAnswer, error) { return ReadSchema(answer, quote) })
}

// read is the reading of (answer, reasoning, tag, quote) from memory, or
// from reading, remembered when it reads. What it remembers is its own
// copy: a cached answer's strings are views of the cache's entry, and a
// memo that outlives the entry would keep it, reasoning and all, alive.
func (m *Memo) read(answer, reasoning, tag string, quote Quote, reading func(answer, reasoning string) (JudgeAnswer, error)) (JudgeAnswer, error) {
	k := m.key(answer, reasoning, tag, quote)
	m.mu.Lock()
	e, ok := m.entries[k]
	m.mu.Unlock()
	if ok && e.answer == answer && e.reasoning == reasoning && e.tag == tag && e.quote == quote {
		return e.read, nil
	}
	answer, reasoning = strings.Clone(answer), strings.Clone(reasoning) // the reading's strings are parts of these
	a, err := reading(answer, reasoning)
	if err != nil {
		return a, err
	}
	m.mu.Lock()
	if len(m.entries) >= m.max {
		clear(m.entries)
	}
	m.entries[k] = memoEntry{answer: answer, reasoning: reasoning, tag: tag, quote: quote, read: a}
	m.mu.Unlock()
	return a, nil
}
