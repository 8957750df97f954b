package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-cdc/sluice/verify"
)

// verify compares every PostgreSQL source table, through the pipeline's
// transforms, with the table of each mysql or postgres sink that receives
// it, and lists the keys that differ. It writes nothing. Exit code 1 on
// any difference or a pair that failed to compare; pairs verify cannot
// compare by design (other sink types, mode "append") are listed as
// skipped and do not fail it.
func (c *cli) verify(args []string) int {
	fs := c.flags("verify", "FILE [--json] [--chunk N] [--max-diffs N] [--rechecks N] [--recheck-wait D]")
	asJSON := fs.Bool("json", false, "print JSON (for scripts)")
	chunk := fs.Int("chunk", verify.DefaultChunk, "keys per chunk compared by checksum")
	maxDiffs := fs.Int("max-diffs", verify.DefaultMaxDiffs, "differing keys listed per table (the counts stay exact)")
	rechecks := fs.Int("rechecks", verify.DefaultRechecks, "times a differing chunk is read again before it is reported, for a running pipeline (0: never)")
	wait := fs.Duration("recheck-wait", verify.DefaultRecheckWait, "wait before each re-read of a differing chunk")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	files, code, ok := c.parseFiles(fs, args, 1, 1)
	if !ok {
		return code
	}
	if *chunk <= 0 || *maxDiffs <= 0 || *rechecks < 0 || *wait <= 0 {
		c.errorf("verify: --chunk, --max-diffs and --recheck-wait must be positive, --rechecks at least 0")
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
	rep, err := verify.Run(ctx, cfg, verify.Options{
		Chunk: *chunk, MaxDiffs: *maxDiffs, Rechecks: *rechecks, RecheckWait: *wait,
		Logger: slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		c.errorf("verify: %v", err)
		return exitFindings
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
	for _, p := range rep.Pairs {
		if p.Skipped == "" && !p.Equal() {
			return exitFindings
		}
	}
	return exitOK
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
	}
	fmt.Fprintf(w, "%d equal, %d with differences, %d failed, %d skipped\n", equal, differ, failed, skipped)
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
