package bench

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"sync"
	"time"
)

// cpuEvery is how often a cpuSampler reads the processors' time.
const cpuEvery = 100 * time.Millisecond

// userHZ is the unit of the times /proc reports (USER_HZ): 100 on every
// Linux this runs on (sysconf(_SC_CLK_TCK) needs cgo to ask).
const userHZ = 100

// cpuSampler reads how busy this machine's processors are (/proc/stat) and
// how much processor time some processes used (/proc/PID/stat), every
// cpuEvery while a run lasts, so that the run's measured window can be read
// afterwards (window): a latency's tail on a machine whose processors are
// all busy is the machine's as much as the worker's, and the worker's
// processor a thought is what its cuts are measured by. On a system
// without /proc it keeps nothing, and window reports nothing.
type cpuSampler struct {
	pids    func() []int
	mu      sync.Mutex
	samples []cpuSample
	cancel  context.CancelFunc
	done    chan struct{}
}

type cpuSample struct {
	at          time.Time
	busy, total uint64 // every processor's time, busy and in all, in USER_HZ ticks
	procs       uint64 // the processes' user and system time, in ticks
}

// startCPUSampler samples until close; pids, when set, names the processes
// whose time is read (the workers), asked at each sample.
func startCPUSampler(pids func() []int) *cpuSampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &cpuSampler{pids: pids, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(cpuEvery)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// close stops the sampling, with one last sample.
func (s *cpuSampler) close() {
	s.cancel()
	<-s.done
	s.sample()
}

func (s *cpuSampler) sample() {
	busy, total, ok := machineTicks()
	if !ok {
		return
	}
	c := cpuSample{at: time.Now(), busy: busy, total: total}
	if s.pids != nil {
		for _, pid := range s.pids() {
			c.procs += procTicks(pid)
		}
	}
	s.mu.Lock()
	s.samples = append(s.samples, c)
	s.mu.Unlock()
}

// window returns, between the first sample at or after from and the last
// at or before to, the share of the machine's processor time that was busy
// (0 to 1) and the processor seconds the processes used; ok is false when
// fewer than two samples fall in it.
func (s *cpuSampler) window(from, to time.Time) (busy, procSeconds float64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first, last *cpuSample
	for i := range s.samples {
		c := &s.samples[i]
		if c.at.Before(from) || c.at.After(to) {
			continue
		}
		if first == nil {
			first = c
		}
		last = c
	}
	if first == nil || last == first || last.total <= first.total {
		return 0, 0, false
	}
	busy = float64(last.busy-first.busy) / float64(last.total-first.total)
	return busy, float64(last.procs-first.procs) / userHZ, true
}

// machineTicks reads every processor's busy and total time from
// /proc/stat's first line (user nice system idle iowait irq softirq steal
// ...): busy is all but idle and iowait.
func machineTicks() (busy, total uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	return statTicks(b)
}

// statTicks reads /proc/stat's text b (see machineTicks).
func statTicks(b []byte) (busy, total uint64, ok bool) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fields := bytes.Fields(line)
	if len(fields) < 9 || string(fields[0]) != "cpu" {
		return 0, 0, false
	}
	var v [8]uint64
	for i := range v {
		var err error
		if v[i], err = strconv.ParseUint(string(fields[i+1]), 10, 64); err != nil {
			return 0, 0, false
		}
		total += v[i]
	}
	return total - v[3] - v[4], total, true
}

// procTicks reads a process's user and system time from /proc/PID/stat
// (fields 14 and 15, counted after the command's closing parenthesis, as a
// command may hold spaces); 0 when it cannot be read.
func procTicks(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	return pidStatTicks(b)
}

// pidStatTicks reads /proc/PID/stat's text b (see procTicks).
func pidStatTicks(b []byte) uint64 {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	fields := bytes.Fields(b[i+1:]) // field 3 (state) on
	if len(fields) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseUint(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseUint(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return utime + stime
}
