package bench

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/consumers/natstest"
)

// The sampler reads this process's own processor time: after it has burnt
// 300 ms of processor (by getrusage, not the clock), the window says so
// within a tick or two, and the machine was busy for some of it.
func TestCPUSamplerReadsAProcessesTime(t *testing.T) {
	if _, _, ok := machineTicks(); !ok {
		t.Skip("no /proc/stat here")
	}
	cpuTime := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	s := startCPUSampler(func() []int { return []int{os.Getpid()} })
	from := sampledAfter(t, s, time.Time{}) // a sample before the burn
	burnt := cpuTime()
	x := 0
	for cpuTime()-burnt < 300*time.Millisecond {
		for i := range 100000 {
			x += i
		}
	}
	to := sampledAfter(t, s, time.Now()) // and one after
	s.close()
	busy, secs, ok := s.window(from, to)
	if !ok {
		t.Fatal("no window")
	}
	if secs < 0.25 || busy <= 0 || busy > 1 {
		t.Errorf("the window read %.2f s of this process's processor (it burnt 0.30 s or more; %d) and the machine %.0f%% busy", secs, x%2, 100*busy)
	}
}

// /proc/PID/stat is read after the command's last parenthesis: a command
// may hold spaces and parentheses of its own.
func TestPidStatTicksAfterTheCommand(t *testing.T) {
	line := "4242 (noesis (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 9 0 1000 1000000 500\n"
	if got := pidStatTicks([]byte(line)); got != 1234+567 {
		t.Errorf("ticks %d, want %d", got, 1234+567)
	}
	if got := pidStatTicks([]byte("4242 (short) S 1")); got != 0 {
		t.Errorf("a short line read %d ticks, want 0", got)
	}
	busy, total, ok := statTicks([]byte("cpu  100 5 50 800 20 3 2 10 0 0\ncpu0 1 2 3\n"))
	if !ok || total != 990 || busy != 990-800-20 {
		t.Errorf("statTicks: busy %d total %d ok %v, want 170 of 990", busy, total, ok)
	}
}

// sampledAfter waits, 5 s at most, until s holds a sample taken after t,
// and returns when that sample was taken.
func sampledAfter(tb testing.TB, s *cpuSampler, t time.Time) time.Time {
	tb.Helper()
	var at time.Time
	natstest.Eventually(tb, 5*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if n := len(s.samples); n > 0 && s.samples[n-1].at.After(t) {
			at = s.samples[n-1].at
		}
		return !at.IsZero()
	}, func() string { return fmt.Sprintf("no sample after %v", t) })
	return at
}
