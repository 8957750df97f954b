package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
)

// Benchmarks (acceptance 7). Run:
//
//	go test -run '^$' -bench . -benchtime 1x ./sources/postgres/
//
// They report rows/s or events/s and the process's peak RSS (VmHWM).

const benchRows = 1_000_000

const benchDDL = `CREATE TABLE bench (id bigint PRIMARY KEY, name text, amount numeric(12,2), created timestamptz, flag boolean, note varchar(40))`

const benchFill = `INSERT INTO bench SELECT g, 'name ' || g, g * 1.25, '2026-01-01'::timestamptz + g * interval '1 second', g %% 2 = 0, md5(g::text)
	FROM generate_series(%d, %d) g`

// peakRSSMB returns the process's peak resident set size in MB.
func peakRSSMB(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func BenchmarkSnapshot(b *testing.B) {
	d := newDB(b)
	d.exec(benchDDL)
	d.exec(fmt.Sprintf(benchFill, 1, benchRows))
	d.exec(`ANALYZE bench`)
	b.ResetTimer()
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		cfg := dsl.PostgresSource{Tables: []string{"public.bench"}, Slot: fmt.Sprintf("snap%d", i), Publication: "pub"}
		// The real state file: progress and chunk keys cost a durable
		// bbolt write each.
		store, err := state.Open(filepath.Join(b.TempDir(), "state.db"))
		if err != nil {
			b.Fatal(err)
		}
		p := d.open(cfg, nil, store.Corner("source", "src"))
		start := time.Now()
		n := 0
		for {
			ev, err := p.Read(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			n += len(ev)
			// Acknowledge like an engine whose sink keeps up, so that the
			// state forgets committed chunks.
			last := ev[len(ev)-1].Position
			if err := p.Ack(context.Background(), change.Checkpoint{last.Stream(): last}); err != nil {
				b.Fatal(err)
			}
			if n >= benchRows {
				break
			}
		}
		elapsed += time.Since(start)
		p.Close()
		store.Close()
	}
	b.ReportMetric(float64(benchRows*b.N)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(peakRSSMB(b), "peakRSS_MB")
}

// BenchmarkStream measures streaming 1,000,000 inserts already in the
// WAL (1,000 transactions of 1,000 rows) to a discarding reader, next to
// a bare pglogrepl loop (receive, parse the pgoutput message, count)
// over the same WAL in the same run: each side runs twice, interleaved,
// and its faster run counts.
func BenchmarkStream(b *testing.B) {
	d := newDB(b)
	d.exec(benchDDL)
	cfg := dsl.PostgresSource{Tables: []string{"public.bench"}, Snapshot: "never", Slot: "s", Publication: "pub"}
	d.open(cfg, nil, newState()).Close() // slot and publication
	cfg.Slot = "s2"
	d.open(cfg, nil, newState()).Close()
	d.exec(`SELECT pg_create_logical_replication_slot('bare', 'pgoutput'), pg_create_logical_replication_slot('bare2', 'pgoutput')`)
	for lo := 1; lo <= benchRows; lo += 1000 {
		d.exec(fmt.Sprintf(benchFill, lo, lo+999))
	}
	b.ResetTimer()

	start, cpu0 := time.Now(), cpuTime()
	if n := bareLoop(b, d.dsn, "bare", benchRows); n < benchRows {
		b.Fatalf("bare loop saw %d inserts", n)
	}
	bare, bareCPU := time.Since(start), cpuTime()-cpu0

	ours, oursCPU := time.Duration(1<<63-1), time.Duration(1<<63-1)
	for _, slot := range []string{"s", "s2"} { // twice, like the bare loop: the faster counts
		cfg.Slot = slot
		p := d.open(cfg, nil, newState())
		start, cpu0 = time.Now(), cpuTime()
		n := 0
		for n < benchRows {
			ev, err := p.Read(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			for _, e := range ev {
				if e.Op == change.Insert {
					n++
				}
			}
		}
		ours, oursCPU = min(ours, time.Since(start)), min(oursCPU, cpuTime()-cpu0)
		p.Close()
		if slot == "s" {
			// The bare loop again, between our two runs: neither side
			// profits from a warmer cache.
			start, cpu0 = time.Now(), cpuTime()
			bareLoop(b, d.dsn, "bare2", benchRows)
			bare, bareCPU = min(bare, time.Since(start)), min(bareCPU, cpuTime()-cpu0)
		}
	}
	b.ReportMetric(float64(benchRows)/ours.Seconds(), "events/s")
	b.ReportMetric(float64(benchRows)/bare.Seconds(), "bare_events/s")
	b.ReportMetric(100*bare.Seconds()/ours.Seconds(), "pct_of_bare")
	// CPU time of this process per event: what the client costs,
	// whatever else the machine runs (wall-clock rates vary with load).
	b.ReportMetric(float64(oursCPU.Microseconds())/benchRows, "cpu_us/event")
	b.ReportMetric(float64(bareCPU.Microseconds())/benchRows, "bare_cpu_us/event")
	b.ReportMetric(peakRSSMB(b), "peakRSS_MB")
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bareLoop is the reference: pglogrepl's demo loop without decoding
// values or building events.
func bareLoop(b *testing.B, dsn, slot string, want int) int {
	ctx := context.Background()
	conn, err := connectReplication(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	err = pglogrepl.StartReplication(ctx, conn, slot, 0, pglogrepl.StartReplicationOptions{Mode: pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names 'pub'"}})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for n < want {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			b.Fatal(err)
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok || len(cd.Data) == 0 || cd.Data[0] != pglogrepl.XLogDataByteID {
			continue
		}
		x, err := pglogrepl.ParseXLogData(cd.Data[1:])
		if err != nil {
			b.Fatal(err)
		}
		m, err := pglogrepl.Parse(x.WALData)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := m.(*pglogrepl.InsertMessage); ok {
			n++
		}
	}
	return n
}

// BenchmarkSnapshotIncremental copies the same 1,000,000-row table with
// snapshot = "initial" and with "incremental", twice each, interleaved,
// to a reader that acknowledges every batch (a sink that keeps up), and
// reports both rates and their ratio (issue 10, acceptance 3), and the
// WAL the slot still holds back at the incremental copy's middle: the
// slot's restart_lsn moves during an incremental copy (checkpoints log
// the running transactions it moves by), not during an initial one.
func BenchmarkSnapshotIncremental(b *testing.B) {
	d := newDB(b)
	d.exec(benchDDL)
	d.exec(fmt.Sprintf(benchFill, 1, benchRows))
	d.exec(`ANALYZE bench`)
	b.ResetTimer()
	elapsed := map[string]time.Duration{}
	var advanced int
	for i := 0; i < b.N; i++ {
		for _, mode := range []string{"initial", SnapshotIncremental, "initial", SnapshotIncremental} {
			slot := fmt.Sprintf("mode_%s_%d_%d", mode, i, len(elapsed)+advanced)
			cfg := dsl.PostgresSource{Tables: []string{"public.bench"}, Slot: slot, Publication: "pub", Snapshot: mode}
			store, err := state.Open(filepath.Join(b.TempDir(), "state.db"))
			if err != nil {
				b.Fatal(err)
			}
			st := store.Corner("source", "src")
			start := time.Now()
			p := d.open(cfg, nil, st)
			var startLSN string
			d.conn.QueryRow(context.Background(), "SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&startLSN)
			n, logged, checked := 0, false, false
			for n < benchRows {
				ev, err := p.Read(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				for _, e := range ev {
					if e.Op == change.Snapshot {
						n++
					}
				}
				last := ev[len(ev)-1].Position
				if err := p.Ack(context.Background(), change.Checkpoint{last.Stream(): last}); err != nil {
					b.Fatal(err)
				}
				if mode == SnapshotIncremental && !logged && n >= benchRows/4 {
					logged = true
					d.exec("CHECKPOINT") // logs the running transactions restart_lsn moves by
				}
				if mode == SnapshotIncremental && !checked && n >= benchRows*3/4 {
					checked = true
					time.Sleep(1200 * time.Millisecond) // one standby status update
					var moved bool
					d.conn.QueryRow(context.Background(), "SELECT restart_lsn > $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1", slot, startLSN).Scan(&moved)
					if moved {
						advanced++
					}
					start = start.Add(1200 * time.Millisecond) // not the copy's time
				}
			}
			elapsed[mode] += time.Since(start)
			p.Close()
			store.Close()
			d.waitSlotInactive(slot)
			d.exec("SELECT pg_drop_replication_slot($1)", slot)
		}
	}
	initial := float64(2*benchRows*b.N) / elapsed["initial"].Seconds()
	incremental := float64(2*benchRows*b.N) / elapsed[SnapshotIncremental].Seconds()
	b.ReportMetric(initial, "initial_rows/s")
	b.ReportMetric(incremental, "incremental_rows/s")
	b.ReportMetric(100*incremental/initial, "pct_of_initial")
	b.ReportMetric(float64(advanced)/float64(2*b.N), "restart_lsn_moved")
	b.ReportMetric(peakRSSMB(b), "peakRSS_MB")
}
