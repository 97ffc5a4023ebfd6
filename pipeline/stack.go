package pipeline

// growStack grows the calling goroutine's stack to 32 KiB (or leaves a
// larger one as it is) in one copy. The tribunal calls it in each goroutine
// that asks a judge, at a shallow depth.
//
// A goroutine starts with Go's smallest stack (2 KiB: the binary is linked
// with adaptivestackstart=0, see the Makefile, so that the many small
// goroutines of the HTTP client stay small) and grows it by copying it to a
// twice larger one whenever a call needs more room. A judge's model call
// goes more than 16 KiB deep (the tribunal, the router, the OpenAI client's
// JSON), so its goroutine ends with a 32 KiB stack after four copies, each
// of a deeper stack with more frames to adjust: at 1,000 thoughts/s, twelve
// thousand copies a second. Growing first makes one copy while the stack is
// still shallow, to the size it would reach anyway. (The bridge's call is not
// always that deep: grown the same way, its goroutines held 16 KiB more each;
// BenchmarkInFlight in router.) The garbage collector still shrinks a stack
// that stays mostly unused.
func growStack() { grow() }

// stackPad is sized so that grow's frame, on top of the frames of a stage's
// caller, needs more than 16 KiB: the runtime then doubles the stack straight
// to 32 KiB.
const stackPad = 20 << 10

//go:noinline
func grow() {
	var pad [stackPad]byte
	touch(&pad)
}

// touch keeps pad, which does not escape, on grow's frame.
//
//go:noinline
func touch(p *[stackPad]byte) { p[0] = 1 }
