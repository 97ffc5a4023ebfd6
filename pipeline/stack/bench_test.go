package stack

import "testing"

// BenchmarkGrow is Grow in a new goroutine, as the tribunal calls it: the
// goroutine's start, its stack's growth and Grow's own frame.
func BenchmarkGrow(b *testing.B) {
	done := make(chan struct{})
	b.ReportAllocs()
	for b.Loop() {
		go func() {
			Grow()
			done <- struct{}{}
		}()
		<-done
	}
}

// BenchmarkGrowGrown is Grow on a stack already grown: its frame alone.
func BenchmarkGrowGrown(b *testing.B) {
	Grow()
	for b.Loop() {
		Grow()
	}
}
