package stack

import (
	"runtime"
	"sync"
	"testing"
)

// A thousand goroutines that grew their stacks hold 16 KiB each while they
// wait (8 KiB with Grow8), and the pad that grew them is not on the heap.
func TestGrowGivesA16KiBStack(t *testing.T) {
	testGrowGives(t, Grow, 16<<10)
}

func TestGrow8GivesAn8KiBStack(t *testing.T) {
	testGrowGives(t, Grow8, 8<<10)
}

func testGrowGives(t *testing.T, grow func(), size int64) {
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
			grow()
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
	// size apart from half of it and twice it.
	if per := (int64(grown) - int64(before)) / n; per < size*3/4 || per >= size*3/2 {
		t.Errorf("stack per goroutine %d B, want %d KiB", per, size>>10)
	}
	if heap := (int64(heapGrown) - int64(heapBefore)) / n; heap > 4<<10 {
		t.Errorf("heap per goroutine %d B: the pad escaped", heap)
	}
}
