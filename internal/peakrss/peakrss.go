// Package peakrss measures the peak resident memory of a process on Linux
// by reading VmHWM, the resident set's high-water mark, from /proc.
//
// Why not the rusage that wait4 returns for a child: Go starts children
// with vfork (CLONE_VM), so until exec the child runs on its parent's
// address space, and at exec Linux records that address space's
// high-water mark into the child's ru_maxrss. A child's ru_maxrss is
// therefore never below its parent's own peak: a test binary that once
// held 100 MB reports 100 MB for /bin/true. VmHWM belongs to the address
// space the child built after exec, so it is the child's alone.
package peakrss

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Read returns the VmHWM of process pid ("self" for the caller) in bytes.
func Read(pid string) (int64, error) {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("peakrss: VmHWM of %s: %v", pid, err)
		}
		return kib * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	// A zombie (exited, not yet reaped) has no memory lines left.
	return 0, fmt.Errorf("peakrss: no VmHWM for process %s (exited?)", pid)
}

// Interval is how often a Sampler reads VmHWM. The high-water mark only
// grows, so each read covers everything before it; what a Sampler can
// miss is growth in the last Interval before the process exits.
const Interval = 5 * time.Millisecond

// Sampler follows a running child's VmHWM until Stop.
type Sampler struct {
	pid  string
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak int64
}

// Start begins sampling process pid. Call it right after the process
// starts and Stop once it has exited (after Wait).
func Start(pid int) *Sampler {
	s := &Sampler{pid: strconv.Itoa(pid), stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *Sampler) loop() {
	defer close(s.done)
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		if b, err := Read(s.pid); err == nil {
			s.mu.Lock()
			s.peak = max(s.peak, b)
			s.mu.Unlock()
		}
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// Stop ends sampling and returns the highest VmHWM seen, in bytes; 0 if
// the process exited before the first read.
func (s *Sampler) Stop() int64 {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// MB converts bytes to mebibytes for reports.
func MB(b int64) float64 { return float64(b) / (1 << 20) }
