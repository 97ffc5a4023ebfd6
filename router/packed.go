package router

import (
	"encoding/binary"
	"slices"
	"unique"
	"unsafe"

	"github.com/noesis-dev/noesis/pipeline"
)

// packed is an answer as the cache's store holds it: one byte slice, with
// nothing in it for the collector to scan, where a pipeline.Response is
// 144 bytes of fields around four strings (the store spent 263-286 bytes an
// entry besides the text; now 146-202 besides the packed bytes).
//
// Layout: a flags byte, the usage's three counts and the lengths of the
// provider, model, target and content as uvarints, then the provider,
// model, target, content and reasoning. A packed answer is never written
// once made: unpack's content and reasoning are views of it, and keep it
// alive while anything holds one; its provider, model and target are the
// process's one copy of each name (unique), so that a name kept for long,
// as a metric's label, keeps no answer alive.
//
// The text is not compressed: S2 took answer-sized pieces of English prose
// (this repository's docs, 400 to 4,000 bytes) down by 0 to 31 %, not worth
// a copy on every hit, and the simulator's thinking, a few phrases drawn
// again and again, by two thirds, which would flatter every figure.
type packed []byte

// The flags byte's bits.
const (
	packFallback = 1 << iota
	packColdStart
	packHedged
	packTruncated
	packStructured
)

// packedOverhead is what the store spends on an entry besides its bytes:
// the slice's header in ristretto's item, its key hash, conflict hash and
// expiry, its place in the map, the expiry buckets and the admission
// policy's cost map. TestPackedOverheadIsWhatTheStoreSpends measured 146 to
// 202 bytes from 5,000 to 150,000 entries, as the maps fill and grow.
const packedOverhead = 176

// cost is what the store counts p as against CacheConfig.MaxBytes: the
// bytes allocated for it (pack's capacity is its allocation's size class)
// and the store's overhead.
func (p packed) cost() int64 { return int64(cap(p)) + packedOverhead }

// pack makes r the store's entry. Cached, Latency and CostUSD are left out:
// a hit has none of its own (asHit).
func pack(r pipeline.Response) packed {
	var flags byte
	for _, f := range [...]struct {
		on  bool
		bit byte
	}{{r.Fallback, packFallback}, {r.ColdStart, packColdStart}, {r.Hedged, packHedged}, {r.Truncated, packTruncated}, {r.Structured, packStructured}} {
		if f.on {
			flags |= f.bit
		}
	}
	var head [1 + 7*binary.MaxVarintLen64]byte
	head[0] = flags
	n := 1
	for _, v := range [...]int{r.Usage.PromptTokens, r.Usage.CompletionTokens, r.Usage.TotalTokens, len(r.Provider), len(r.Model), len(r.Target), len(r.Content)} {
		n += binary.PutUvarint(head[n:], uint64(max(v, 0)))
	}
	p := slices.Grow([]byte(nil), n+len(r.Provider)+len(r.Model)+len(r.Target)+len(r.Content)+len(r.Reasoning)) // its capacity rounded up to the allocation's
	p = append(append(append(append(p, head[:n]...), r.Provider...), r.Model...), r.Target...)
	return append(append(p, r.Content...), r.Reasoning...)
}

// unpack returns the answer p holds, as pack was given it less Cached,
// Latency and CostUSD; ok is false when p cannot be read as one pack made
// (an entry cut short may read as a shorter answer: the store's are whole).
func (p packed) unpack() (r pipeline.Response, ok bool) {
	if len(p) == 0 {
		return r, false
	}
	flags, rest := p[0], p[1:]
	var v [7]int
	for i := range v {
		u, n := binary.Uvarint(rest)
		if n <= 0 || (i >= 3 && u > uint64(len(p))) { // a length past p's end
			return r, false
		}
		v[i], rest = int(u), rest[n:]
	}
	r.Usage = pipeline.Usage{PromptTokens: v[0], CompletionTokens: v[1], TotalTokens: v[2]}
	if v[3]+v[4]+v[5] > len(rest) {
		return r, false
	}
	r.Provider, r.Model, r.Target = name(rest[:v[3]]), name(rest[v[3]:v[3]+v[4]]), name(rest[v[3]+v[4]:v[3]+v[4]+v[5]])
	text := rest[v[3]+v[4]+v[5]:]
	if v[6] > len(text) {
		return r, false
	}
	r.Content, r.Reasoning = view(text[:v[6]]), view(text[v[6]:])
	r.Fallback, r.ColdStart, r.Hedged = flags&packFallback != 0, flags&packColdStart != 0, flags&packHedged != 0
	r.Truncated, r.Structured = flags&packTruncated != 0, flags&packStructured != 0
	return r, true
}

// view is b as a string without a copy. Only for bytes nobody writes again,
// as a packed answer's.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// name is b as the process's one copy of that string: the few names a
// cache's answers carry are made once, not once a hit, and none of them
// is a view of an entry.
func name(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unique.Make(view(b)).Value() // Make copies a string it keeps
}
