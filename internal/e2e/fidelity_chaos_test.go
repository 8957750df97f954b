package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// fidCatchUp is how long after the writers finish each fidelity pipeline
// may take to commit the last source transaction.
const fidCatchUp = 90 * time.Second

// fidRun is one fidelity case during a chaos run: its databases, its
// pipeline and process, its writer, and what went wrong while it ran.
type fidRun struct {
	c       *fidCase
	src     *sql.DB
	tgt     target
	dir     string
	file    string
	env     []string
	p       *proc
	w       *fidWriter
	trouble []string      // exits and pauses seen during the run, in order
	werr    error         // the writer's error, set before done closes
	done    chan struct{} // closed when the writer has finished
}

// fidelityPipeline is a pipeline NAME from the given public tables of
// SOURCE_DSN (slot e2e_NAME, 1s heartbeats) through sink "replica" of
// type sink at TARGET_DSN, each table into the table of its own name
// (no `table` attribute), created when missing.
func fidelityPipeline(dir, name string, tables []string, sink string) string {
	qt := make([]string, len(tables))
	for i, tb := range tables {
		qt[i] = fmt.Sprintf("%q", "public."+tb)
	}
	return fmt.Sprintf(`pipeline %q {
  state = %q
}

source "postgres" "app" {
  dsn       = env("SOURCE_DSN")
  tables    = [%s]
  slot      = "e2e_%s"
  heartbeat = "1s"
}

sink %q "replica" {
  from        = source.app
  dsn         = env("TARGET_DSN")
  auto_create = true
}
`, name, dir+"/state.db", strings.Join(qt, ", "), name, sink)
}

// setupFidelity makes every fidelity case's databases, source tables and
// seed rows, and the target tables a case makes before the first run.
func setupFidelity(t *testing.T, ctx context.Context, sink string, seed uint64) []*fidRun {
	t.Helper()
	var runs []*fidRun
	for i, c := range fidCases() {
		srcDSN := pg.CreateDB(t)
		src := openPG(t, srcDSN)
		mustExec(t, src, c.ddl...)
		tgt := newTarget(t, sink)
		mustExec(t, tgt.db, c.targetDDL[sink]...)
		dir := t.TempDir()
		r := &fidRun{
			c: c, src: src, tgt: tgt, dir: dir,
			file: writeFile(t, dir, c.name+".hcl", fidelityPipeline(dir, c.name, c.tables, sink)),
			env:  []string{"SOURCE_DSN=" + srcDSN, "TARGET_DSN=" + tgt.dsn},
			w:    newFidWriter(src, seed, uint64(100+i)),
			done: make(chan struct{}),
		}
		if err := r.w.seedRows(ctx, c); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		runs = append(runs, r)
	}
	return runs
}

func (r *fidRun) start(t *testing.T) { r.p = startSluice(t, r.dir, r.file, r.env...) }

// committed reports whether the case's sink has committed a checkpoint
// at or after WAL position lsn.
func (r *fidRun) committed(lsn uint64) bool {
	pos, ok, err := checkpoint(r.tgt.db, r.c.name, "replica", "app")
	return err == nil && ok && pos.Offset >= lsn
}

// note records what is wrong with the process now, if anything, once per
// distinct description.
func (r *fidRun) note(when string) {
	var s string
	switch {
	case !r.p.running():
		s = fmt.Sprintf("sluice run exited on its own %s (%v): %s", when, r.p.err, logExcerpt(r.p.logs.String()))
	case !r.p.healthy():
		s = fmt.Sprintf("the pipeline paused %s: %s", when, logExcerpt(r.p.logs.String()))
	default:
		return
	}
	_, what, _ := strings.Cut(s, ": ")
	for _, seen := range r.trouble {
		if _, seenWhat, _ := strings.Cut(seen, ": "); seenWhat == what {
			return
		}
	}
	r.trouble = append(r.trouble, s)
}

// logExcerpt is the warnings and errors of a JSON log, each once, cut
// short: enough to say why a pipeline stopped.
func logExcerpt(logs string) string {
	var out []string
	seen := map[string]bool{}
	for _, line := range strings.Split(logs, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			if strings.Contains(line, "panic") {
				out = append(out, abbrev(line, 400))
			}
			continue
		}
		if lvl, _ := rec["level"].(string); lvl != "ERROR" && lvl != "WARN" {
			continue
		}
		keys := make([]string, 0, len(rec))
		for k := range rec {
			if k != "time" && k != "level" && k != "msg" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		s := fmt.Sprintf("%v %v", rec["level"], rec["msg"])
		for _, k := range keys {
			s += fmt.Sprintf(" %s=%v", k, rec[k])
		}
		if s = abbrev(s, 700); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return "(no warnings or errors logged)"
	}
	if len(out) > 4 {
		out = append(out[:3], fmt.Sprintf("… %d more, the last: %s", len(out)-4, out[len(out)-1]))
	}
	return strings.Join(out, "\n    ")
}

// check is a case's verdict after the writers have finished: the pipeline
// committed the last source transaction without stopping, and the target
// equals the source column by column.
func (r *fidRun) check(t *testing.T, ctx context.Context, deadline time.Time) {
	t.Logf("%s; the writer made %s", r.c.about, r.w.summary())
	if r.werr != nil {
		t.Fatalf("the source writer failed (a defect of the test): %v", r.werr)
	}
	for _, p := range r.c.premises {
		var ok sql.NullBool
		if err := r.src.QueryRowContext(ctx, p.query).Scan(&ok); err != nil || !ok.Bool {
			t.Errorf("premise not met, so the case proves less than it claims (a defect of the test): %s (%v)", p.what, err)
		}
	}
	for _, s := range r.trouble {
		t.Errorf("%s", s)
	}
	caughtUp := eventually(time.Until(deadline), 250*time.Millisecond, func() bool { return r.committed(r.w.lastLSN) || !r.p.healthy() }) &&
		r.committed(r.w.lastLSN)
	if !caughtUp {
		pos, ok, _ := checkpoint(r.tgt.db, r.c.name, "replica", "app")
		r.note("after the writer finished")
		state := "still running, but it did not catch up within " + fidCatchUp.String() + " of the writers' end"
		switch {
		case !r.p.running():
			state = fmt.Sprintf("sluice run exited (%v)", r.p.err)
		case !r.p.healthy():
			state = "the pipeline is paused"
		}
		committed := "nothing"
		if ok {
			committed = pos.String()
		}
		t.Errorf("the pipeline did not commit the last source transaction (WAL %d): %s; its sink committed %s: %s",
			r.w.lastLSN, state, committed, logExcerpt(r.p.logs.String()))
	}
	for _, tb := range r.c.check {
		n, problems, err := compareTable(ctx, r.src, r.tgt, tb)
		if err != nil {
			t.Errorf("comparing %s: %v", tb.name, err)
			continue
		}
		for _, p := range problems {
			t.Errorf("%s", p)
		}
		if len(problems) == 0 {
			t.Logf("table %s: %d rows, equal column by column", tb.name, n)
		}
	}
	for _, name := range r.c.absent {
		cols, err := targetColumns(ctx, r.tgt.db, r.tgt.sink, name)
		if err != nil {
			t.Errorf("looking for target table %s: %v", name, err)
		} else if cols != nil {
			var rows int64
			_ = r.tgt.db.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteFor(r.tgt.sink)(name)).Scan(&rows)
			t.Errorf("the target has a table %s (%d rows): changes were written under a partition's name, not the partitioned table's", name, rows)
		}
	}
	if r.p.healthy() {
		if err := r.p.stop(); err != nil {
			t.Errorf("sluice run after SIGTERM: %v (want exit 0): %s", err, logExcerpt(r.p.logs.String()))
		}
	}
	if strings.Contains(r.p.logs.String(), "panic") {
		t.Errorf("the last run logged a panic: %s", logExcerpt(r.p.logs.String()))
	}
}
