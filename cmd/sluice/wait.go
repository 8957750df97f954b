package main

import (
	"fmt"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/observe"
)

// wait exits 0 once every sink's lag has stayed below --max-lag for --for
// (lag as in package observe: 0 when a sink has committed everything
// read) and, for Kafka sources, every partition's consumer-group lag
// (records not yet durable in every sink, read or not) has stayed at or
// below --max-lag-records, and 1 when --timeout passes first. The pipeline must be running
// (`sluice run` on the same state file): a stopped pipeline never
// catches up, so wait then times out, saying so.
func (c *cli) wait(args []string) int {
	fs := c.flags("wait", "FILE --max-lag 5s [--max-lag-records 0] --for 60s [--timeout 30m]")
	maxLag := fs.Duration("max-lag", 5*time.Second, "the lag every sink must stay below")
	hold := fs.Duration("for", 60*time.Second, "how long the lag must stay below --max-lag")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up (exit 1) after this long")
	every := fs.Duration("interval", time.Second, "how often to look")
	maxRecords := fs.Int64("max-lag-records", 0, "Kafka sources: the consumer-group lag (records) each partition must stay at or below")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	files, code, ok := c.parseFiles(fs, args, 1, 1)
	if !ok {
		return code
	}
	if *maxLag <= 0 || *hold < 0 || *timeout <= 0 || *every <= 0 || *maxRecords < 0 {
		c.errorf("wait: --max-lag, --timeout and --interval must be positive and --for and --max-lag-records not negative")
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
			ok, why = caughtUp(st, *maxLag, *maxRecords)
		}
		switch {
		case !ok:
			below = time.Time{}
		case below.IsZero():
			below = now
		}
		if ok && now.Sub(below) >= *hold {
			fmt.Fprintf(c.stdout, "caught up: every sink's lag has stayed below %s%s for %s (after %s)\n", *maxLag, kafkaGate(cfg, *maxRecords), *hold, now.Sub(start).Round(time.Millisecond))
			return exitOK
		}
		if now.After(deadline) {
			fmt.Fprintf(c.stdout, "timed out after %s: %s\n", *timeout, why)
			return exitFindings
		}
		time.Sleep(min(*every, time.Until(deadline)+time.Millisecond))
	}
}

// kafkaGate describes the Kafka part of the gate, if the pipeline has
// Kafka sources.
func kafkaGate(cfg *dsl.Config, maxRecords int64) string {
	for _, s := range cfg.Sources {
		if s.Type == "kafka" {
			return fmt.Sprintf(" and every Kafka partition's lag at or below %d records", maxRecords)
		}
	}
	return ""
}

// caughtUp reports whether every sink's lag is below maxLag and every
// Kafka source partition's lag at most maxRecords, or why not.
func caughtUp(st observe.Status, maxLag time.Duration, maxRecords int64) (bool, string) {
	if !st.Running {
		return false, "the pipeline is not running (start it with `sluice run`)"
	}
	if st.Phase == "paused" {
		why := "the pipeline is paused"
		if st.Paused != nil {
			why += ": " + st.Paused.Error
		}
		return false, why + " (fix the cause, then `sluice resume`)"
	}
	for _, s := range st.Sources {
		if s.Type != "kafka" {
			continue
		}
		if len(s.Kafka) == 0 {
			return false, fmt.Sprintf("source %s: consumer-group lag unknown (no partition fetched yet)", s.Name)
		}
		for _, p := range s.Kafka {
			if p.Lag > maxRecords {
				return false, fmt.Sprintf("source %s: topic %s partition %d is %d records behind (max %d)", s.Name, p.Topic, p.Partition, p.Lag, maxRecords)
			}
		}
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
