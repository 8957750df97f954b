package main

import (
	"fmt"
	"github.com/sluice-cdc/sluice/components"
	"time"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/state"
)

// resume resumes a pipeline that on_error = "pause" (or a rejected row
// under "retry") paused, without restarting its process: it creates the
// request file STATE.resume beside the state file, which the paused
// `sluice run` takes within a fraction of a second (it works without
// --http; POST /resume on the --http address does the same). The running
// process then reopens from the checkpoints and retries the event that
// paused: if it fails again, the pipeline pauses again with the new error
// (`sluice status` shows it). A pipeline that is not running, or not
// paused, is reported and resume exits 1.
func (c *cli) resume(args []string) int {
	fs := c.flags("resume", "FILE [--timeout 10s]")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the running sluice to take the request")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	files, code, ok := c.parseFiles(fs, args, 1, 1)
	if !ok {
		return code
	}
	if *timeout <= 0 {
		c.errorf("resume: --timeout must be positive")
		return exitUsage
	}
	cfg := c.load(files[0], vars, true)
	if cfg == nil {
		return exitFindings
	}
	st, err := c.pipelineStatus(cfg, false)
	if err != nil {
		c.errorf("%v", err)
		return exitFindings
	}
	if !st.Running {
		fmt.Fprintf(c.stdout, "pipeline %q is not running (phase %s): nothing to resume; `sluice run` starts it and retries from the checkpoints\n", st.Pipeline, st.Phase)
		return exitFindings
	}
	if st.Phase != engine.PhasePaused.String() {
		fmt.Fprintf(c.stdout, "pipeline %q is not paused (phase %s): nothing to resume\n", st.Pipeline, st.Phase)
		return exitFindings
	}
	path := components.Settings(cfg).StatePath()
	if err := state.RequestResume(path); err != nil {
		c.errorf("%v", err)
		return exitFindings
	}
	deadline := time.Now().Add(*timeout)
	for state.ResumePending(path) {
		if time.Now().After(deadline) {
			state.CancelResume(path)
			fmt.Fprintf(c.stdout, "the running sluice (pid %d) did not take the resume request within %s\n", st.PID, *timeout)
			return exitFindings
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(c.stdout, "resumed pipeline %q (pid %d): it retries from the checkpoints, starting with the event that paused; if that fails again it pauses again (see `sluice status`)\n", st.Pipeline, st.PID)
	return exitOK
}
