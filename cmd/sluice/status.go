package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/sluice-cdc/sluice/components"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
	"github.com/sluice-cdc/sluice/observe"
)

// probeTimeout bounds the PostgreSQL queries of status and wait.
const probeTimeout = 5 * time.Second

// status prints each source's acknowledged position, snapshot progress
// and WAL lag, each sink's committed checkpoint and lag, the dead-letter
// count, and whether a `sluice run` holds the pipeline. While it runs, the
// figures come from the status file it keeps beside the state file.
func (c *cli) status(args []string) int {
	fs := c.flags("status", "FILE [--json] [--no-probe]")
	asJSON := fs.Bool("json", false, "print JSON (for scripts)")
	noProbe := fs.Bool("no-probe", false, "do not connect to PostgreSQL sources for WAL positions")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	files, code, ok := c.parseFiles(fs, args, 1, 1)
	if !ok {
		return code
	}
	cfg := c.load(files[0], vars, *noProbe)
	if cfg == nil {
		return exitFindings
	}
	st, err := c.pipelineStatus(cfg, !*noProbe)
	if err != nil {
		c.errorf("%v", err)
		return exitFindings
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
		return exitOK
	}
	writeStatus(c.stdout, cfg, st)
	return exitOK
}

// pipelineStatus reads the state file (or the running pipeline's status
// file) and, with probe, asks PostgreSQL sources for their WAL positions.
func (c *cli) pipelineStatus(cfg *dsl.Config, probe bool) (observe.Status, error) {
	st, err := state.Inspect(components.Settings(cfg).StatePath())
	if err != nil {
		return observe.Status{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	return observe.Build(ctx, cfg, st, observe.Options{Probe: probe}), nil
}

func writeStatus(w io.Writer, cfg *dsl.Config, st observe.Status) {
	running := "not running"
	if st.Running {
		running = "running"
	}
	fmt.Fprintf(w, "pipeline %q (%s), state %s\n", st.Pipeline, running, st.State)
	writePhase(w, st)
	fmt.Fprintln(w)
	types := map[string]string{}
	for _, s := range cfg.Sources {
		types[s.Name] = s.Type
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tSTREAM\tACKNOWLEDGED\tWAL LAG\tWAL RETAINED\tWAL STATUS\tSAFE WAL")
	for _, s := range st.Sources {
		lag, retained, status, safe := "-", "-", "-", "-"
		if s.WAL != nil {
			if s.WAL.Exists {
				lag, retained = bytesText(s.WAL.LagBytes), bytesText(s.WAL.RetainedBytes)
				if s.WAL.WALStatus != "" {
					status = s.WAL.WALStatus
				}
				if s.WAL.SafeWALSize != nil {
					safe = bytesText(*s.WAL.SafeWALSize)
				} else if s.WAL.WALStatus != "lost" {
					safe = "unlimited"
				}
			} else {
				lag = "slot " + s.WAL.Slot + " missing"
			}
		}
		writeCheckpoint(tw, s.Name, s.Acked, types, lag+"\t"+retained+"\t"+status+"\t"+safe)
	}
	fmt.Fprintln(tw) // an empty line ends the first table's column block
	fmt.Fprintln(tw, "SINK\tSTREAM\tCOMMITTED\tLAG\tLAG BYTES\tLAST COMMIT TIME")
	for _, s := range st.Sinks {
		lag, bytes, at := "? (not running)", "-", "-"
		if s.LagSeconds != nil {
			lag = (time.Duration(*s.LagSeconds * float64(time.Second))).Round(time.Millisecond).String()
		}
		if s.LagBytes != nil {
			bytes = bytesText(*s.LagBytes)
		}
		if s.CommitTime != nil {
			at = s.CommitTime.Format(time.RFC3339)
		}
		writeCheckpoint(tw, s.Name, s.Committed, types, lag+"\t"+bytes+"\t"+at)
	}
	tw.Flush()
	writeKafkaLag(w, st)
	for _, s := range st.Sources {
		if s.Snapshot == nil {
			continue
		}
		writeSnapshot(w, s.Name, s.Snapshot)
	}
	for _, s := range st.Sources {
		if len(s.Resync) > 0 {
			writeResync(w, s.Name, s.Resync)
		}
	}
	fmt.Fprintf(w, "\ndead letters: %d\n", st.DeadLetters)
	for _, p := range st.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
}

// writePhase writes the phase line, the retry or pause under way and the
// last error.
func writePhase(w io.Writer, st observe.Status) {
	since := ""
	if st.PhaseSince != nil {
		since = " since " + st.PhaseSince.Format(time.RFC3339)
	}
	pid := ""
	if st.PID != 0 {
		pid = fmt.Sprintf(" (pid %d)", st.PID)
	}
	fmt.Fprintf(w, "phase: %s%s%s\n", st.Phase, since, pid)
	if r := st.Retry; r != nil {
		fmt.Fprintf(w, "  retry attempt %d at %s\n", r.Attempt, r.Next.Format(time.RFC3339))
	}
	if p := st.Paused; p != nil {
		if p.Stage != "" {
			fmt.Fprintf(w, "  paused at %s, table %s, position %s\n", p.Stage, p.Table, p.Position)
		}
		fmt.Fprintf(w, "  error: %s\n", p.Error)
		fmt.Fprintln(w, "  fix the cause, then `sluice resume FILE` retries the event")
	}
	if e := st.LastError; e != nil {
		stage := ""
		if e.Stage != "" {
			stage = " in " + e.Stage
		}
		fmt.Fprintf(w, "last error%s at %s: %s\n", stage, e.Time.Format(time.RFC3339), e.Error)
	}
}

// writeKafkaLag writes each Kafka source's consumer-group lag per
// partition.
func writeKafkaLag(w io.Writer, st observe.Status) {
	has := false
	for _, s := range st.Sources {
		has = has || len(s.Kafka) > 0
	}
	if !has {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KAFKA SOURCE\tTOPIC\tPARTITION\tHIGH WATERMARK\tCOMMITTED\tLAG (RECORDS)")
	for _, s := range st.Sources {
		for _, p := range s.Kafka {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", s.Name, p.Topic, p.Partition, p.HighWatermark, p.Committed, p.Lag)
		}
	}
	tw.Flush()
}

func writeSnapshot(w io.Writer, source string, s *observe.Snapshot) {
	state := "in progress"
	if s.Done {
		state = "done"
	}
	fmt.Fprintf(w, "\nsnapshot of source %s: %s, %s\n", source, state, rowsText(s.RowsDone, s.RowsEstimated))
	if s.RowsPerSecond > 0 {
		fmt.Fprintf(w, "  %.0f rows/s", s.RowsPerSecond)
		if s.ETASeconds != nil {
			fmt.Fprintf(w, ", about %s left", time.Duration(*s.ETASeconds*float64(time.Second)).Round(time.Second))
		}
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, t := range s.Tables {
		done := ""
		if t.Done {
			done = "done"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", t.Table, rowsText(t.RowsDone, t.RowsEstimated), done)
	}
	tw.Flush()
}

func rowsText(done, estimated int64) string {
	if estimated <= 0 {
		return fmt.Sprintf("%d rows", done)
	}
	return fmt.Sprintf("%d/~%d rows (%.0f%%)", done, estimated, 100*float64(min(done, estimated))/float64(estimated))
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, suffix := float64(n), []string{"KiB", "MiB", "GiB", "TiB"}
	i := -1
	for f >= unit && i < len(suffix)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", f, suffix[i])
}

// writeCheckpoint writes one line per stream of cp, each ending in tail.
func writeCheckpoint(w io.Writer, component string, cp change.Checkpoint, sourceTypes map[string]string, tail string) {
	if len(cp) == 0 {
		fmt.Fprintf(w, "%s\t-\tnothing yet\t%s\n", component, tail)
		return
	}
	streams := make([]change.Stream, 0, len(cp))
	for s := range cp {
		streams = append(streams, s)
	}
	sort.Slice(streams, func(i, j int) bool { return streams[i].String() < streams[j].String() })
	for i, s := range streams {
		if i > 0 {
			tail = strings.Repeat("\t", strings.Count(tail, "\t"))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", component, s, positionText(cp[s], sourceTypes[s.Source]), tail)
	}
}

// positionText shows PostgreSQL positions as LSNs.
func positionText(p change.Position, sourceType string) string {
	if sourceType == "postgres" {
		if p.Index == math.MaxUint32 { // the mark at a transaction's commit
			return p.LSN() + " (commit)"
		}
		return fmt.Sprintf("%s #%d", p.LSN(), p.Index)
	}
	return p.String()
}
