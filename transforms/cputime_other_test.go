//go:build !unix

package transforms

import "time"

// cpuTime is unknown here; the events/cpu-s metric is then left out.
func cpuTime() time.Duration { return 0 }
