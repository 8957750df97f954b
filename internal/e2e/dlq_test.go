package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDeadLetterReplay follows a row MariaDB refuses through the whole
// bad-data path of a pipeline with on_error = "dead_letter": the run goes
// on with the rows after it, `sluice dlq list` shows the row with the
// reason, and once the target is fixed `sluice dlq replay` applies it.
// Nothing is silently dropped.
//
// When the refused row comes before the sink has committed anything (here:
// within the first heartbeat interval after the snapshot of an empty
// table; likewise a bad row among the first batch of a snapshot), the
// restart "without the dead-lettered event" reopens the PostgreSQL source,
// which reads the snapshot again with the row in it under a new position.
// The engine recognises the refused row by table, key and content and
// passes over it: one letter, and the run goes on.
func TestDeadLetterReplay(t *testing.T) {
	t.Run("refused after the first commit", func(t *testing.T) { deadLetterReplay(t, true) })
	t.Run("refused before the first commit", func(t *testing.T) { deadLetterReplay(t, false) })
}

// deadLetterReplay runs the test; committedFirst waits for the sink's
// first checkpoint (a heartbeat) before the source rows are written.
func deadLetterReplay(t *testing.T, committedFirst bool) {
	srcDSN := pg.CreateDB(t)
	src := openPG(t, srcDSN)
	mustExec(t, src, "CREATE TABLE notes (id integer PRIMARY KEY, body text)")
	tgt := newTarget(t, "mysql")
	mustExec(t, tgt.db, "CREATE TABLE notes (id BIGINT PRIMARY KEY, body VARCHAR(5))")
	dir := t.TempDir()
	file := writeFile(t, dir, "dlq.hcl", fmt.Sprintf(`pipeline "dlq" {
  state    = %q
  on_error = "dead_letter"
}

source "postgres" "app" {
  dsn    = env("SOURCE_DSN")
  tables    = ["public.notes"]
  slot      = "e2e_dlq"
  heartbeat = "1s"
}

sink "mysql" "notes" {
  from = source.app
  dsn  = env("TARGET_DSN")
}
`, filepath.Join(dir, "state.db")))
	env := []string{"SOURCE_DSN=" + srcDSN, "TARGET_DSN=" + tgt.dsn}
	p := startSluice(t, dir, file, env...)
	if !eventually(time.Minute, 100*time.Millisecond, func() bool {
		return queryInt(t, src, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'e2e_dlq' AND confirmed_flush_lsn IS NOT NULL") == 1 || !p.healthy()
	}) || !p.healthy() {
		t.Fatalf("no replication slot within a minute\n%s", p.logs.String())
	}
	if committedFirst && !eventually(time.Minute, 100*time.Millisecond, func() bool {
		_, ok, _ := checkpoint(tgt.db, "dlq", "notes", "app")
		return ok || !p.healthy()
	}) {
		t.Fatalf("the sink committed no heartbeat within a minute\n%s", p.logs.String())
	}
	mustExec(t, src,
		"INSERT INTO notes VALUES (1, 'ok')",
		"INSERT INTO notes VALUES (2, 'far too long for five')",
		"INSERT INTO notes VALUES (3, 'fine')",
		"UPDATE notes SET body = 'fine!' WHERE id = 3")
	rows := func() string {
		out, err := rowTexts(t.Context(), tgt.db, quoteFor("mysql"), "notes", []column{{"id", kInt}, {"body", kText}}, 1)
		if err != nil {
			return err.Error()
		}
		return strings.Join(out, "\n")
	}
	want := `1|"ok"` + "\n" + `3|"fine!"`
	var got string
	relettered := func() bool { return strings.Count(p.logs.String(), `"msg":"event dead-lettered"`) > 1 }
	if !eventually(time.Minute, 100*time.Millisecond, func() bool { got = rows(); return got == want || !p.healthy() || relettered() }) || !p.healthy() || relettered() {
		t.Fatalf("notes in MariaDB:\n%s\nwant:\n%s\n(the rows after the refused one must go on; dead-lettered more than once: %t)\n%s", got, want, relettered(), p.logs.String())
	}
	if err := p.stop(); err != nil {
		t.Fatalf("sluice run after SIGTERM: %v (want exit 0)\n%s", err, p.logs.String())
	}

	var letters []struct {
		Stage string          `json:"stage"`
		Table string          `json:"table"`
		Error string          `json:"error"`
		Event json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(sluice(t, dir, env, "dlq", "list", "--json", file), &letters); err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 {
		t.Fatalf("dlq list shows %d letters, want the one refused row: %+v", len(letters), letters)
	}
	l := letters[0]
	if l.Stage != "sink.notes" || l.Table != "public.notes" || !strings.Contains(string(l.Event), `"far too long for five"`) || !strings.Contains(l.Error, "body") {
		t.Errorf("dead letter = stage %q, table %q, error %q, event %s; want sink.notes, public.notes, an error naming column body, the row with id 2", l.Stage, l.Table, l.Error, l.Event)
	}

	mustExec(t, tgt.db, "ALTER TABLE notes MODIFY body TEXT")
	if out := string(sluice(t, dir, env, "dlq", "replay", file)); !strings.Contains(out, "replayed 1, still failing 0") {
		t.Errorf("dlq replay printed %q, want replayed 1, still failing 0", out)
	}
	want = `1|"ok"` + "\n" + `2|"far too long for five"` + "\n" + `3|"fine!"`
	if got := rows(); got != want {
		t.Errorf("after the replay notes in MariaDB:\n%s\nwant:\n%s", got, want)
	}
	if out := string(sluice(t, dir, env, "dlq", "list", file)); !strings.Contains(out, "0 dead letter(s)") {
		t.Errorf("dlq list after the replay:\n%s\nwant 0 dead letter(s)", out)
	}
}
