package stack

// Grow grows the calling goroutine's stack to 16 KiB (or leaves a
// larger one as it is) in one copy. The tribunal calls it in each goroutine
// that asks a judge, at a shallow depth.
//
// A goroutine starts with Go's smallest stack (2 KiB: the binary is linked
// with adaptivestackstart=0, see the Makefile, so that the many small
// goroutines of the HTTP client stay small) and grows it by copying it to a
// twice larger one whenever a call needs more room. A judge's model call
// goes more than 16 KiB deep (the tribunal, the router, the OpenAI client's
// JSON): four copies, each of a deeper stack with more frames to adjust, at
// 1,000 thoughts/s twelve thousand goroutines a second. Growing first makes
// three of them one copy while the stack is still shallow. It stops at
// 16 KiB, the largest stack Go keeps in its per-processor caches: a 32 KiB
// one comes from the heap, and a judge answered from the cache never needs
// it (grown to 32 KiB, cache hits spent 7 % of the worker's processor in
// Grow; grown to 16 KiB, 4 %, and no fewer thoughts a second). The
// pool (consumers) calls it too, first thing in each delivery's goroutine:
// the chain, the stage and the router reach 16 KiB even on a cache hit, and
// grew it there in two copies more (newstack 9.9 % of a worker's processor
// on cache hits before, 2.9 % after). The garbage collector still shrinks
// a stack that stays mostly unused.
//
// Only the frame's size matters, not its pad's contents: the pad is zeroed
// and touched only when padTouched is set, which it never is, so Grow does
// not clear 10 KiB on every call (97 of the 735 ns of BenchmarkGrow, a
// goroutine started and grown) while the compiler still sizes its frame
// for the pad.
//
//go:noinline
func Grow() {
	if padTouched {
		var pad [stackPad]byte
		touch(&pad)
	}
}

// Grow8 is Grow to 8 KiB: for a goroutine that makes one model call near
// the top of its stack (a judge's: pipeline's Tribunal.ask). The OpenAI
// client and HTTP take such a goroutine to 8 KiB before its request is
// sent, in two copies (2 -> 4 -> 8 KiB) without Grow8 and one with it; it
// holds those 8 KiB while it waits for the answer either way.
//
//go:noinline
func Grow8() {
	if padTouched {
		var pad [stackPad8]byte
		touch8(&pad)
	}
}

// stackPad8 is sized so that Grow8's frame, on top of a goroutine's first
// frames, needs more than 4 KiB and less than 8: the runtime then doubles a
// 2 KiB stack straight to 8 KiB.
const stackPad8 = 5 << 10

// touch8 keeps pad, which does not escape, on Grow8's frame.
//
//go:noinline
func touch8(p *[stackPad8]byte) { p[0] = 1 }

// padTouched keeps Grow's pad in its frame: a condition the compiler cannot
// know to be false. Nothing sets it.
var padTouched bool

// stackPad is sized so that Grow's frame, on top of a goroutine's first
// frames, needs more than 8 KiB: the runtime then doubles the stack straight
// to 16 KiB.
const stackPad = 10 << 10

// touch keeps pad, which does not escape, on Grow's frame.
//
//go:noinline
func touch(p *[stackPad]byte) { p[0] = 1 }
