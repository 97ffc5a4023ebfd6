// Package stack gives a goroutine that is going to run deep its stack at once.
//
// A new goroutine starts with Go's smallest stack (2 KiB: the binary is
// linked with adaptivestackstart=0, see the Makefile, so that the many small
// goroutines of the HTTP client stay small) and grows it by copying it to a
// twice larger one each time a call needs more room. A delivery or a judge
// that calls a model goes 20 KB and more deep (the stage, the router, the
// OpenAI client's JSON): four copies, each of a deeper stack with more frames
// to adjust, and a worker at 1,000 thoughts/s made 16,000 of them a second,
// a tenth of its processor. Grow makes the one copy while the stack is still
// almost empty.
package stack

// Grow grows the calling goroutine's stack to 32 KiB, or leaves it as it is
// when it is larger. Call it first thing in a goroutine that will call a
// model. The garbage collector still shrinks a stack that stays mostly unused.
func Grow() { grow() }

// frame is sized so that grow's frame, on top of a goroutine's first few
// frames, needs more than 16 KiB: the runtime then doubles the stack straight
// to 32 KiB.
const frame = 20 << 10

//go:noinline
func grow() {
	var pad [frame]byte
	touch(&pad)
}

// touch keeps pad, which does not escape, on grow's frame.
//
//go:noinline
func touch(p *[frame]byte) { p[0] = 1 }
