// Command sluice-bench runs the standard workload end to end through a
// PostgreSQL → MariaDB/MySQL or PostgreSQL → PostgreSQL pipeline, run by
// the sluice binary in a child process (so that its peak RSS is measured
// alone), and prints snapshot rows/s, streaming events/s, commit-to-visible
// latency percentiles and peak RSS. The target must end identical to the
// source, or it exits 1.
//
//	sluice-bench -source-dsn postgres://... -target mysql -target-dsn 'root@tcp(127.0.0.1:3306)/bench'
//
// The workload: preload -rows users (snapshot phase); with the pipeline
// stopped, -inserts inserts in transactions of -tx, -updates updates and
// -deletes deletes, then the pipeline catches up (streaming phase, so the
// figure is the pipeline's, not the writer's); then single-row inserts at
// -rate per second for -latency (latency phase). It drops and recreates
// the table bench_users on both sides and the slot and publication
// sluice_bench on the source.
//
// With -compare, each phase is also run through limit loops with no
// sluice code (compare.go), and each sluice figure is printed as a
// fraction of its limit; -runs repeats the whole workload and prints
// the median and range of every figure and fraction.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"syscall"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/internal/peakrss"
)

type options struct {
	sourceDSN, target, targetDSN string
	rows, inserts, tx            int
	updates, deletes             int
	rate                         int
	latency                      time.Duration
	sluice                       string
	batchSize                    int
	cpuProfile                   string
	compare                      bool
	runs                         int
	// workers is the pipeline's snapshot_workers (0: not written, the
	// source's default) and the parallel upsert loop's connections.
	workers int
}

func main() {
	var o options
	flag.StringVar(&o.sourceDSN, "source-dsn", os.Getenv("SOURCE_DSN"), "PostgreSQL source URL (wal_level=logical); default $SOURCE_DSN")
	flag.StringVar(&o.target, "target", "mysql", "target kind: mysql or postgres")
	flag.StringVar(&o.targetDSN, "target-dsn", os.Getenv("TARGET_DSN"), "target DSN; default $TARGET_DSN")
	flag.IntVar(&o.rows, "rows", 200_000, "rows preloaded before the pipeline starts (snapshot phase)")
	flag.IntVar(&o.inserts, "inserts", 200_000, "inserts in the streaming phase")
	flag.IntVar(&o.tx, "tx", 100, "rows per source transaction in the streaming phase")
	flag.IntVar(&o.updates, "updates", 50_000, "updates in the streaming phase")
	flag.IntVar(&o.deletes, "deletes", 20_000, "deletes in the streaming phase")
	flag.IntVar(&o.rate, "rate", 1000, "single-row inserts per second in the latency phase")
	flag.DurationVar(&o.latency, "latency", 30*time.Second, "length of the latency phase")
	flag.IntVar(&o.batchSize, "batch-size", 1000, "the sink's batch_size")
	flag.StringVar(&o.sluice, "sluice", defaultSluice(), "the sluice binary that runs the pipeline (a separate process, so that its peak RSS is its own)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write CPU profiles of sluice run to PREFIX-snapshot.prof and PREFIX-streaming.prof (the latter covers the latency phase too)")
	flag.BoolVar(&o.compare, "compare", false, "also run each phase through limit loops without sluice (bare pgoutput decode, bare SELECT, bare batched upserts into bench_users_bare) and print sluice's figures as fractions of the limits")
	flag.IntVar(&o.workers, "snapshot-workers", 0, "the source's snapshot_workers (default: not set, the number of CPUs and at least 2), and the connections of the parallel bare upsert loop")
	flag.IntVar(&o.runs, "runs", 1, "repeat the whole workload this many times and print the median and range of each figure")
	flag.Parse()
	if o.sourceDSN == "" || o.targetDSN == "" || (o.target != "mysql" && o.target != "postgres") {
		fmt.Fprintln(os.Stderr, "sluice-bench: want -source-dsn, -target mysql|postgres and -target-dsn")
		flag.Usage()
		os.Exit(2)
	}
	var results []result
	for i := 0; i < max(o.runs, 1); i++ {
		if o.runs > 1 {
			fmt.Printf("\nrun %d of %d\n", i+1, o.runs)
		}
		r, err := run(o, os.Stdout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sluice-bench:", err)
			os.Exit(1)
		}
		results = append(results, r)
	}
	if o.runs > 1 || o.compare {
		summarize(os.Stdout, results)
	}
}

func run(o options, out io.Writer) (res result, err error) {
	ctx := context.Background()
	src, err := openSource(ctx, o.sourceDSN)
	if err != nil {
		return res, err
	}
	defer src.close()
	tgt, err := openTarget(o.target, o.targetDSN)
	if err != nil {
		return res, err
	}
	defer tgt.close()
	if err := src.reset(ctx); err != nil {
		return res, err
	}
	if err := tgt.reset(ctx); err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	file, err := pipeline(o, dir)
	if err != nil {
		return res, err
	}

	fmt.Fprintf(out, "preloading %d rows\n", o.rows)
	if err := src.preload(ctx, o.rows); err != nil {
		return res, err
	}

	// Snapshot phase: from start until the target holds every row.
	p, err := startPipeline(o, file, "snapshot")
	if err != nil {
		return res, err
	}
	// The snapshot's readers each copy a key range in key order: the
	// last id is in once the last range is, and once every 1000th id is
	// in, a thousand rows of each range are left at most (then waitEqual
	// compares the whole table). The probe is cheap, so it perturbs the
	// copy little: one key lookup until the last id is in.
	snapshot, err := waitEqual(ctx, src, tgt, 10*time.Minute, p, func(ctx context.Context) (bool, error) {
		if ok, err := tgt.has(ctx, int64(o.rows)); !ok || err != nil {
			return ok, err
		}
		return tgt.hasEvery(ctx, 1000, int64(o.rows))
	})
	if err != nil {
		return res, fmt.Errorf("snapshot phase: %w", err)
	}
	res.snapshot = float64(o.rows) / snapshot.Seconds()
	fmt.Fprintf(out, "snapshot:  %d rows in %v: %.0f rows/s\n", o.rows, snapshot.Round(time.Millisecond), res.snapshot)
	if err := p.stop(); err != nil {
		return res, err
	}
	peakRSS := p.peakRSS
	var bare *bareTarget
	if o.compare {
		if bare, err = newBareTarget(ctx, tgt, o.target, o.batchSize); err != nil {
			return res, err
		}
		defer bare.close()
		if res.snapLimits.source, err = src.bareRead(ctx, o.rows); err != nil {
			return res, err
		}
		if res.snapLimits.target, err = bare.apply(ctx, preloadRows(o.rows)); err != nil {
			return res, err
		}
		if err := bare.equal(ctx); err != nil {
			return res, err
		}
		printLimits(out, "rows/s", res.snapshot, res.snapLimits, "bare read", "bare upsert")
		// Again on as many connections as the snapshot's readers, each
		// its own key range, into the table the loop above filled: what
		// a parallel snapshot's lanes do when they resume.
		if err := bare.empty(ctx); err != nil {
			return res, err
		}
		if res.snapParallel, err = bare.applyParallel(ctx, preloadRows(o.rows), o.snapshotReaders()); err != nil {
			return res, err
		}
		if err := bare.equal(ctx); err != nil {
			return res, err
		}
		fmt.Fprintf(out, "           bare upsert on %d connections %.0f rows/s (sluice %.2f of it)\n", o.snapshotReaders(), res.snapParallel, res.snapshot/res.snapParallel)
		if err := src.createBareSlot(ctx); err != nil {
			return res, err
		}
	}

	// Streaming phase: the changes wait in the WAL; measure the catch-up.
	changes, err := src.workload(ctx, o.rows, o.inserts, o.tx, o.updates, o.deletes)
	if err != nil {
		return res, err
	}
	p, err = startPipeline(o, file, "streaming")
	if err != nil {
		return res, err
	}
	streaming, err := waitEqual(ctx, src, tgt, 10*time.Minute, p, func(ctx context.Context) (bool, error) {
		ok, err := tgt.has(ctx, lastDeleted(o.deletes))
		return !ok, err
	})
	if err != nil {
		return res, fmt.Errorf("streaming phase: %w", err)
	}
	res.streaming = float64(changes) / streaming.Seconds()
	fmt.Fprintf(out, "streaming: %d changes in %v: %.0f events/s\n", changes, streaming.Round(time.Millisecond), res.streaming)
	if o.compare {
		// The limit loops run with the pipeline stopped.
		if err := p.stop(); err != nil {
			return res, err
		}
		peakRSS = max(peakRSS, p.peakRSS)
		if res.streamLimits.source, err = bareDecode(ctx, o.sourceDSN, changes); err != nil {
			return res, err
		}
		if err := src.dropBareSlot(ctx); err != nil {
			return res, err
		}
		if res.streamLimits.target, err = bare.apply(ctx, workloadChanges(o.rows, o.inserts, o.updates, o.deletes, src.now)); err != nil {
			return res, err
		}
		if err := bare.equal(ctx); err != nil {
			return res, err
		}
		printLimits(out, "events/s", res.streaming, res.streamLimits, "bare decode", "bare upsert")
		if o.latency > 0 {
			if p, err = startPipeline(o, file, "latency"); err != nil {
				return res, err
			}
		}
	}
	if o.latency <= 0 {
		if err := p.stop(); err != nil {
			return res, err
		}
		return res, finish(ctx, src, tgt, out, max(peakRSS, p.peakRSS))
	}

	// Latency phase: single-row inserts at a steady rate.
	lat, err := measureLatency(ctx, src, tgt, o.rows+o.inserts+1, o.rate, o.latency)
	if err != nil {
		return res, fmt.Errorf("latency phase: %w", err)
	}
	if _, err := waitEqual(ctx, src, tgt, 2*time.Minute, p, nil); err != nil {
		return res, fmt.Errorf("latency phase: %w", err)
	}
	if err := p.stop(); err != nil {
		return res, err
	}
	peakRSS = max(peakRSS, p.peakRSS)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Fprintf(out, "latency:   %d inserts at %d/s: p50 %v, p99 %v, max %v (commit to visible in the target)\n",
		len(lat), o.rate, pct(lat, 50), pct(lat, 99), lat[len(lat)-1].Round(time.Microsecond))

	return res, finish(ctx, src, tgt, out, peakRSS)
}

// finish compares the target with the source row by row.
func finish(ctx context.Context, src *source, tgt target, out io.Writer, peakRSS float64) error {
	diff, err := compare(ctx, src, tgt)
	if err != nil {
		return err
	}
	if diff != "" {
		return fmt.Errorf("the target differs from the source: %s", diff)
	}
	fmt.Fprintf(out, "target equals source row by row; peak RSS of sluice run %.1f MB\n", peakRSS)
	return nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted) - 1) * p / 100
	return sorted[i].Round(10 * time.Microsecond)
}

// defaultSluice is the sluice binary beside this one, else "sluice" on
// PATH.
func defaultSluice() string {
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "sluice"); fileExists(p) {
			return p
		}
	}
	return "sluice"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// snapshotReaders is how many readers the pipeline's snapshot has.
func (o options) snapshotReaders() int {
	if o.workers > 0 {
		return o.workers
	}
	return max(2, runtime.NumCPU())
}

// pipeline writes the benchmark's pipeline file into dir and returns its
// path; it is checked with dsl.Load first so that a mistake shows here.
func pipeline(o options, dir string) (string, error) {
	workers := "" // unset, so that a sluice from before the attribute runs the file too
	if o.workers > 0 {
		workers = fmt.Sprintf("\n  snapshot_workers = %d", o.workers)
	}
	src := fmt.Sprintf(`pipeline "bench" {
  state = %q
}

source "postgres" "pg" {
  dsn         = env("BENCH_SOURCE_DSN")
  tables      = ["public.bench_users"]
  slot        = "sluice_bench"
  publication = "sluice_bench"
  heartbeat   = "1s"%s
}

sink %q "target" {
  from        = source.pg
  dsn         = env("BENCH_TARGET_DSN")
  auto_create = true
  batch_size  = %d
}
`, filepath.Join(dir, "bench.db"), workers, o.target, o.batchSize)
	if _, _, diags := dsl.LoadWith("bench.hcl", []byte(src), dsl.Options{Offline: true}); diags.HasErrors() {
		return "", diags
	}
	path := filepath.Join(dir, "bench.hcl")
	return path, os.WriteFile(path, []byte(src), 0o600)
}

// running is `sluice run` in a child process.
type running struct {
	cmd     *exec.Cmd
	done    chan error
	err     error // set once done has delivered
	exited  bool
	peakRSS float64 // MB, once stopped
	rss     *peakrss.Sampler
	logs    *bytes.Buffer
}

func startPipeline(o options, file, phase string) (*running, error) {
	args := []string{"run", file, "--log-format", "json"}
	if o.cpuProfile != "" {
		args = append(args, "--cpuprofile", o.cpuProfile+"-"+phase+".prof")
	}
	cmd := exec.Command(o.sluice, args...)
	// The DSNs reach the pipeline file through its env() calls, never
	// through the file itself.
	cmd.Env = append(os.Environ(), "BENCH_SOURCE_DSN="+o.sourceDSN, "BENCH_TARGET_DSN="+o.targetDSN)
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.sluice, err)
	}
	// Sampled VmHWM, not the child's ru_maxrss, which would include this
	// process's own peak (see internal/peakrss).
	r := &running{cmd: cmd, done: make(chan error, 1), logs: logs, rss: peakrss.Start(cmd.Process.Pid)}
	go func() { r.done <- cmd.Wait() }()
	return r, nil
}

// failed returns an error if the pipeline has stopped.
func (r *running) failed() error {
	if r.exited {
		return r.err
	}
	select {
	case err := <-r.done:
		r.exited = true
		r.err = fmt.Errorf("sluice run stopped (%v):\n%s", err, r.logs.String())
		return r.err
	default:
		return nil
	}
}

// stop stops the pipeline gracefully (SIGTERM: drain, commit, exit 0).
func (r *running) stop() error {
	if r.exited {
		return r.err
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	err := <-r.done
	r.exited = true
	r.peakRSS = peakrss.MB(r.rss.Stop())
	if err != nil {
		return fmt.Errorf("sluice run: %v\n%s", err, r.logs.String())
	}
	return nil
}
