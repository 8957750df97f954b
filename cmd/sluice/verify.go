package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/sluice-cdc/sluice/components"
	"io"
	"log/slog"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/state"
	"github.com/sluice-cdc/sluice/verify"
)

// verify compares every PostgreSQL source table, through the pipeline's
// transforms, with the table of each mysql or postgres sink that receives
// it, and lists the keys that differ. It writes nothing. Exit code 1 on
// any difference or a pair that failed to compare; pairs verify cannot
// compare by design (other sink types, mode "append") are listed as
// skipped and do not fail it.
//
// With --repair it then has the running pipeline copy again exactly the
// key ranges whose checksums differ (an incremental snapshot request per
// source and sink, for that sink only, deleting the keys only the target
// holds), waits for the copies, and verifies again: exit 0 only if that
// second verify finds every pair equal. When the pipeline is not running
// the requests wait for its next start and verify exits 1.
func (c *cli) verify(args []string) int {
	fs := c.flags("verify", "FILE [--json] [--chunk N] [--max-diffs N] [--rechecks N] [--recheck-wait D] [--repair [--wait-timeout D]]")
	asJSON := fs.Bool("json", false, "print JSON (for scripts; with --repair, the second verify's, and the progress on stderr)")
	chunk := fs.Int("chunk", verify.DefaultChunk, "keys per chunk compared by checksum (with --repair, the granularity of the ranges copied again)")
	maxDiffs := fs.Int("max-diffs", verify.DefaultMaxDiffs, "differing keys listed per table (the counts stay exact)")
	rechecks := fs.Int("rechecks", verify.DefaultRechecks, "times a differing chunk is read again before it is reported, for a running pipeline (0: never)")
	wait := fs.Duration("recheck-wait", verify.DefaultRecheckWait, "wait before each re-read of a differing chunk")
	repair := fs.Bool("repair", false, "have the running pipeline copy again the key ranges that differ (for the differing sink only), then verify again")
	waitTimeout := fs.Duration("wait-timeout", time.Hour, "with --repair: how long to wait for the pipeline to take and finish the copies")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	files, code, ok := c.parseFiles(fs, args, 1, 1)
	if !ok {
		return code
	}
	if *chunk <= 0 || *maxDiffs <= 0 || *rechecks < 0 || *wait <= 0 || *waitTimeout <= 0 {
		c.errorf("verify: --chunk, --max-diffs, --recheck-wait and --wait-timeout must be positive, --rechecks at least 0")
		return exitUsage
	}
	cfg := c.load(files[0], vars, false)
	if cfg == nil {
		return exitFindings
	}
	if *rechecks == 0 {
		*rechecks = -1 // Options: negative means never
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	opts := verify.Options{
		Chunk: *chunk, MaxDiffs: *maxDiffs, Rechecks: *rechecks, RecheckWait: *wait,
		Logger: slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	rep, err := verify.Run(ctx, cfg, opts)
	if err != nil {
		c.errorf("verify: %v", err)
		return exitFindings
	}
	if *repair {
		// Progress is text; with --json it goes to stderr, and stdout
		// carries the second verify's report only.
		pc := c
		if *asJSON {
			pc = &cli{stdin: c.stdin, stdout: c.stderr, stderr: c.stderr}
		}
		rep = pc.repair(stop, cfg, opts, rep, *waitTimeout)
		if rep == nil {
			return exitFindings
		}
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
	} else {
		writeVerify(c.stdout, rep)
	}
	if !verified(rep) {
		return exitFindings
	}
	return exitOK
}

// verified reports whether every pair verify compared is equal (skipped
// pairs do not count).
func verified(rep *verify.Report) bool {
	for _, p := range rep.Pairs {
		if p.Skipped == "" && !p.Equal() {
			return false
		}
	}
	return true
}

// repairJob is the re-copy one snapshot request asks of a source for
// one sink, and the pairs it repairs.
type repairJob struct {
	req   state.SnapshotRequest
	pairs []*verify.Pair
}

// repairPlan turns a report into one request per source and sink, with
// every differing range and target-only key of its tables, and the
// reasons pairs that differ cannot be repaired.
func repairPlan(rep *verify.Report, id string) (jobs []*repairJob, refused []string) {
	bySink := map[[2]string]*repairJob{}
	for _, p := range rep.Pairs {
		if p.Skipped != "" || p.Equal() {
			continue
		}
		head := fmt.Sprintf("%s → sink.%s", p.Table, p.Sink)
		switch {
		case p.Error != "":
			refused = append(refused, fmt.Sprintf("%s: not repaired: its comparison failed (%s)", head, p.Error))
			continue
		case p.Unrepairable != "":
			refused = append(refused, fmt.Sprintf("%s: not repaired: %s", head, p.Unrepairable))
			continue
		case len(p.Ranges) == 0:
			refused = append(refused, fmt.Sprintf("%s: not repaired: its %d source rows a transform failed on fail in a copy too (see `sluice dlq list`)", head, p.Failed))
			continue
		case p.Failed > 0:
			refused = append(refused, fmt.Sprintf("%s: %d source rows a transform failed on stay different after the copy (see `sluice dlq list`)", head, p.Failed))
		}
		k := [2]string{p.Source, p.Sink}
		j := bySink[k]
		if j == nil {
			j = &repairJob{req: state.SnapshotRequest{ID: fmt.Sprintf("%s-%d", id, len(jobs)+1), Source: p.Source, Sink: p.Sink}}
			bySink[k] = j
			jobs = append(jobs, j)
		}
		j.pairs = append(j.pairs, p)
		j.req.Tables = append(j.req.Tables, p.Table)
		for _, r := range p.Ranges {
			j.req.Ranges = append(j.req.Ranges, state.KeyRange{Table: p.Table, From: r.From, To: r.To})
			for _, key := range r.Extra {
				j.req.Absent = append(j.req.Absent, state.TableKey{Table: p.Table, Key: key})
			}
		}
	}
	return jobs, refused
}

// repair files the re-copies of the report's differing ranges, waits for
// the running pipeline to copy them, and returns the report of a second
// verify; nil when that cannot be reached (not running, refused, timed
// out), having said why. release ends the first verify's signal handling,
// so that SIGINT ends the wait (the pipeline goes on copying).
func (c *cli) repair(release func(), cfg *dsl.Config, opts verify.Options, rep *verify.Report, timeout time.Duration) *verify.Report {
	if verified(rep) {
		fmt.Fprintln(c.stdout, "nothing to repair:")
		return rep
	}
	writeVerify(c.stdout, rep)
	jobs, refused := repairPlan(rep, "verify-"+time.Now().UTC().Format("20060102T150405.000Z"))
	for _, why := range refused {
		fmt.Fprintln(c.stdout, why)
	}
	if len(jobs) == 0 {
		c.errorf("verify --repair: nothing verify can re-copy")
		return nil
	}
	for _, j := range jobs {
		if err := checkRequest(cfg, &j.req); err != nil {
			c.errorf("verify --repair: sink %s: %v", j.req.Sink, err)
			return nil
		}
	}
	st, err := state.Inspect(components.Settings(cfg).StatePath())
	if err != nil || !st.Running {
		for _, j := range jobs {
			if !c.fileRequest(cfg, j.req, timeout) {
				return nil
			}
		}
		fmt.Fprintf(c.stdout, "the repair (%d range(s)) runs when `sluice run` next starts pipeline %q; run `sluice verify` once `sluice status` shows the copies done\n", rangeCount(jobs), cfg.Pipeline.Name)
		return nil
	}
	release()
	deadline := time.Now().Add(timeout)
	var ranges int
	var reread, rows int64
	for _, j := range jobs {
		fmt.Fprintf(c.stdout, "\nrepair for sink %s: %d range(s) of %s, %d key(s) only the target holds\n",
			j.req.Sink, len(j.req.Ranges), strings.Join(j.req.Tables, ", "), len(j.req.Absent))
		if !c.fileRequest(cfg, j.req, min(30*time.Second, time.Until(deadline))) {
			return nil
		}
		if !c.waitResync(cfg, j.req, max(time.Until(deadline), time.Millisecond)) {
			return nil
		}
		done, err := c.requestJobs(cfg, j.req)
		if err != nil {
			c.errorf("%v", err)
			return nil
		}
		var n, tableRows int64
		for _, d := range done {
			n += d.RowsDone
		}
		for _, p := range j.pairs {
			tableRows += p.SourceRows
		}
		fmt.Fprintf(c.stdout, "re-copied %d range(s) for sink %s: %d rows re-read, of %d rows in %s\n", len(done), j.req.Sink, n, tableRows, strings.Join(j.req.Tables, ", "))
		ranges += len(done)
		reread += n
		rows += tableRows
	}
	if len(jobs) > 1 {
		fmt.Fprintf(c.stdout, "re-copied %d range(s) in all: %d rows re-read, of %d rows in the tables\n", ranges, reread, rows)
	}
	fmt.Fprintf(c.stdout, "\nverifying again:\n")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	again, err := verify.Run(ctx, cfg, opts)
	if err != nil {
		c.errorf("verify: %v", err)
		return nil
	}
	return again
}

func rangeCount(jobs []*repairJob) int {
	n := 0
	for _, j := range jobs {
		n += len(j.req.Ranges)
	}
	return n
}

// writeVerify prints one paragraph per pair and a closing count.
func writeVerify(w io.Writer, rep *verify.Report) {
	var equal, differ, skipped, failed int
	for _, p := range rep.Pairs {
		head := fmt.Sprintf("%s → sink.%s", p.Table, p.Sink)
		if p.Table == "" {
			head = fmt.Sprintf("source.%s → sink.%s", p.Source, p.Sink)
		}
		switch {
		case p.Skipped != "":
			skipped++
			fmt.Fprintf(w, "%s: skipped: %s\n", head, p.Skipped)
			continue
		case p.Error != "":
			failed++
			fmt.Fprintf(w, "%s: error: %s\n", head, p.Error)
			continue
		}
		fmt.Fprintf(w, "%s (table %s, %s, delete %s, key %s): %d source rows, %d target rows, %d chunk(s)",
			head, p.Target, p.Mode, p.Delete, strings.Join(p.Key, ", "), p.SourceRows, p.TargetRows, p.Chunks)
		if p.Rechecked > 0 {
			fmt.Fprintf(w, ", %d re-read", p.Rechecked)
		}
		if p.Equal() {
			equal++
			fmt.Fprintln(w, ": equal")
			continue
		}
		differ++
		fmt.Fprintf(w, ": %d missing in target, %d extra in target, %d different", p.Missing, p.Extra, p.Different)
		if p.Failed > 0 {
			fmt.Fprintf(w, ", %d source rows a transform failed on", p.Failed)
		}
		fmt.Fprintln(w)
		for _, d := range p.Diffs {
			fmt.Fprintf(w, "  %-9s %s\n", d.Kind, formatKey(p.Key, d.Key))
			for _, col := range d.Columns {
				fmt.Fprintf(w, "            %s: source %s, target %s\n", col.Column, formatValue(col.Source), formatValue(col.Target))
			}
		}
		if p.Truncated {
			fmt.Fprintf(w, "  … %d more not listed (--max-diffs)\n", p.Missing+p.Extra+p.Different-len(p.Diffs))
		}
		writeRanges(w, p)
	}
	fmt.Fprintf(w, "%d equal, %d with differences, %d failed, %d skipped\n", equal, differ, failed, skipped)
}

// maxRangesShown bounds the ranges the text report lists per pair.
const maxRangesShown = 5

// writeRanges prints the key ranges --repair would copy again, or why it
// cannot.
func writeRanges(w io.Writer, p *verify.Pair) {
	if p.Unrepairable != "" {
		fmt.Fprintf(w, "  --repair cannot copy it again: %s\n", p.Unrepairable)
		return
	}
	if len(p.Ranges) == 0 {
		return
	}
	var rows int64
	for _, r := range p.Ranges {
		rows += r.Rows
	}
	fmt.Fprintf(w, "  %d differing key range(s) of (%s), %d source rows:", len(p.Ranges), strings.Join(p.SourceKey, ", "), rows)
	for i, r := range p.Ranges {
		if i == maxRangesShown {
			fmt.Fprintf(w, " … %d more", len(p.Ranges)-i)
			break
		}
		fmt.Fprintf(w, " [%s … %s]", strings.Join(r.From, ", "), strings.Join(r.To, ", "))
	}
	fmt.Fprintln(w)
}

// formatKey prints a key as col=value in key order.
func formatKey(order []string, key map[string]any) string {
	names := order
	if len(names) == 0 {
		for k := range key {
			names = append(names, k)
		}
		sort.Strings(names)
	}
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + "=" + formatValue(key[k])
	}
	return strings.Join(parts, " ")
}

func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case string:
		return fmt.Sprintf("%q", v)
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}
