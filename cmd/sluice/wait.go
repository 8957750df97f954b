package main

import (
	"fmt"
	"time"

	"github.com/sluice-cdc/sluice/observe"
)

// wait exits 0 once every sink's lag has stayed below --max-lag for --for
// (lag as in package observe: 0 when a sink has committed everything
// read), and 1 when --timeout passes first. The pipeline must be running
// (`sluice run` on the same state file): a stopped pipeline never
// catches up, so wait then times out, saying so.
func (c *cli) wait(args []string) int {
	fs := c.flags("wait", "FILE --max-lag 5s --for 60s [--timeout 30m]")
	maxLag := fs.Duration("max-lag", 5*time.Second, "the lag every sink must stay below")
	hold := fs.Duration("for", 60*time.Second, "how long the lag must stay below --max-lag")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up (exit 1) after this long")
	every := fs.Duration("interval", time.Second, "how often to look")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	files, code, ok := c.parseFiles(fs, args, 1, 1)
	if !ok {
		return code
	}
	if *maxLag <= 0 || *hold < 0 || *timeout <= 0 || *every <= 0 {
		c.errorf("wait: --max-lag, --timeout and --interval must be positive and --for not negative")
		return exitUsage
	}
	cfg := c.load(files[0], vars, true)
	if cfg == nil {
		return exitFindings
	}
	start := time.Now()
	deadline := start.Add(*timeout)
	var below time.Time // since when every sink has been below max-lag
	why := "no status yet"
	for {
		st, err := c.pipelineStatus(cfg, false)
		now := time.Now()
		ok := false
		if err != nil {
			why = err.Error()
		} else {
			ok, why = caughtUp(st, *maxLag)
		}
		switch {
		case !ok:
			below = time.Time{}
		case below.IsZero():
			below = now
		}
		if ok && now.Sub(below) >= *hold {
			fmt.Fprintf(c.stdout, "caught up: every sink's lag has stayed below %s for %s (after %s)\n", *maxLag, *hold, now.Sub(start).Round(time.Millisecond))
			return exitOK
		}
		if now.After(deadline) {
			fmt.Fprintf(c.stdout, "timed out after %s: %s\n", *timeout, why)
			return exitFindings
		}
		time.Sleep(min(*every, time.Until(deadline)+time.Millisecond))
	}
}

// caughtUp reports whether every sink's lag is below maxLag, or why not.
func caughtUp(st observe.Status, maxLag time.Duration) (bool, string) {
	if !st.Running {
		return false, "the pipeline is not running (start it with `sluice run`)"
	}
	for _, s := range st.Sinks {
		if s.LagSeconds == nil {
			return false, fmt.Sprintf("sink %s: lag unknown", s.Name)
		}
		if lag := time.Duration(*s.LagSeconds * float64(time.Second)); lag >= maxLag {
			return false, fmt.Sprintf("sink %s is %s behind (max %s)", s.Name, lag.Round(time.Millisecond), maxLag)
		}
	}
	return true, "caught up"
}
