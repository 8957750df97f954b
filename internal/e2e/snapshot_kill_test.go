package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSnapshotAndStreamSurviveSIGKILL: a 200,000-row table is copied by
// the initial snapshot into a file sink while sluice is SIGKILLed three
// times during the snapshot and twice while it streams changes made
// afterwards; at the end the file holds every source row's latest state
// and no change twice (each snapshot row and each streamed insert
// exactly once).
func TestSnapshotAndStreamSurviveSIGKILL(t *testing.T) {
	const rows, inserts = 200_000, 20_000
	dsn := pg.CreateDB(t)
	db := openPG(t, dsn)
	mustExec(t, db, `CREATE TABLE big (id bigint PRIMARY KEY, payload text NOT NULL)`,
		fmt.Sprintf(`INSERT INTO big SELECT i, repeat(md5(i::text), 3) FROM generate_series(1, %d) i`, rows))
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	file := writeFile(t, dir, "big.hcl", fmt.Sprintf(`pipeline "snapkill" {
  state = %q
}

# held to a rate at which the kills land while the copy runs
source "postgres" "app" {
  dsn                 = env("SOURCE_DSN")
  tables              = ["public.big"]
  max_rows_per_second = 40000
}

sink "file" "out" {
  from = source.app
  path = %q
}
`, filepath.Join(dir, "state.db"), out))
	env := []string{"SOURCE_DSN=" + dsn}
	rng := rand.New(rand.NewPCG(newSeed(t), 2))
	lines := func() int {
		b, _ := os.ReadFile(out)
		return bytes.Count(b, []byte("\n"))
	}
	// three kills during the snapshot, each once the file has grown past
	// a random point of what is left
	for k := 1; k <= 3; k++ {
		before := lines()
		target := before + 1 + rng.IntN((rows-before)/4)
		p := startSluice(t, dir, file, env...)
		if !eventually(2*time.Minute, time.Millisecond, func() bool { return lines() >= target || !p.healthy() }) || !p.healthy() {
			t.Fatalf("snapshot kill %d: the pipeline did not reach %d lines (has %d)\n%s", k, target, lines(), p.logs.String())
		}
		p.kill()
		t.Logf("snapshot kill %d at %d lines", k, lines())
		if lines() >= rows {
			t.Fatalf("the snapshot finished before kill %d", k)
		}
	}
	// let the snapshot finish, then stream inserts with two more kills
	p := startSluice(t, dir, file, env...)
	if !eventually(3*time.Minute, 20*time.Millisecond, func() bool { return lines() >= rows || !p.healthy() }) {
		t.Fatalf("snapshot did not finish: %d lines\n%s", lines(), p.logs.String())
	}
	// a writer inserts the rest in transactions of 50 while the pipeline
	// is killed twice mid-stream
	writerDone := make(chan error, 1)
	go func() {
		for id := rows + 1; id <= rows+inserts; id += 50 {
			if _, err := db.Exec(fmt.Sprintf(`INSERT INTO big SELECT i, 'streamed' FROM generate_series(%d, %d) i`, id, id+49)); err != nil {
				writerDone <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
		writerDone <- nil
	}()
	for k := 1; k <= 2; k++ {
		target := lines() + 1 + rng.IntN(inserts/4)
		if !eventually(time.Minute, time.Millisecond, func() bool { return lines() >= target || !p.healthy() }) || !p.healthy() {
			t.Fatalf("stream kill %d: no progress\n%s", k, p.logs.String())
		}
		p.kill()
		t.Logf("stream kill %d at %d lines", k, lines())
		p = startSluice(t, dir, file, env...)
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	if !eventually(2*time.Minute, 20*time.Millisecond, func() bool { return lines() >= rows+inserts || !p.healthy() }) {
		t.Fatalf("did not catch up: %d lines, want %d\n%s", lines(), rows+inserts, p.logs.String())
	}
	if err := p.stop(); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, p.logs.String())
	}

	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := make(map[int64]string, rows+inserts)
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		var e struct {
			Op    string `json:"op"`
			After struct {
				ID      int64  `json:"id"`
				Payload string `json:"payload"`
			} `json:"after"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if _, dup := seen[e.After.ID]; dup {
			t.Fatalf("line %d: id %d delivered twice (%s)", n, e.After.ID, e.Op)
		}
		want := "snapshot"
		if e.After.ID > rows {
			want = "insert"
		}
		if e.Op != want {
			t.Fatalf("line %d: id %d arrived as %s, want %s", n, e.After.ID, e.Op, want)
		}
		seen[e.After.ID] = e.After.Payload
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != rows+inserts {
		t.Fatalf("the file holds %d distinct rows, want %d", len(seen), rows+inserts)
	}
	for id := int64(1); id <= rows+inserts; id++ {
		if _, ok := seen[id]; !ok {
			t.Fatalf("row %d is missing", id)
		}
	}
}
