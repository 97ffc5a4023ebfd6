package stack

import (
	"runtime"
	"sync"
	"testing"
)

// A thousand goroutines that grew their stacks hold 16 KiB each while they
// wait, and the pad that grew them is not on the heap.
func TestGrowGivesA16KiBStack(t *testing.T) {
	const n = 1000
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before, heapBefore := ms.StackInuse, ms.HeapAlloc
	release := make(chan struct{})
	var started, done sync.WaitGroup
	for range n {
		started.Add(1)
		done.Go(func() {
			Grow()
			started.Done()
			<-release
		})
	}
	started.Wait()
	runtime.ReadMemStats(&ms)
	grown, heapGrown := ms.StackInuse, ms.HeapAlloc
	close(release)
	done.Wait()
	// Other goroutines' stacks come and go meanwhile; the margins keep
	// 16 KiB apart from the 2-4 KiB without Grow and the 32 KiB of one
	// size up.
	if per := (int64(grown) - int64(before)) / n; per < 12<<10 || per >= 24<<10 {
		t.Errorf("stack per goroutine %d B, want 16 KiB", per)
	}
	if heap := (int64(heapGrown) - int64(heapBefore)) / n; heap > 4<<10 {
		t.Errorf("heap per goroutine %d B: the pad escaped", heap)
	}
}
