//go:build unix

package transforms

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system) this process has used: on a
// machine shared with other work, events per CPU-second measures the
// cost per core where wall time would measure the neighbours.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
