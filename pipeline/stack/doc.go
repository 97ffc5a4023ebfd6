// Package stack tunes the stacks of the goroutines that call a model: Grow
// sizes one in a single copy before it goes deep (see Grow for why and by
// how much). The tribunal calls it in each goroutine that asks a judge, the
// pool (consumers) in each delivery's goroutine.
package stack
