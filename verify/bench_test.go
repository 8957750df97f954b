package verify

import (
	"fmt"
	"syscall"
	"testing"
)

// BenchmarkVerify1M compares a 1,000,000-row PostgreSQL table, through a
// transform, with an equal MariaDB table in chunks of 10,000, and reports
// rows/s and the process's peak RSS (which includes everything the
// benchmark did before, so it bounds verify's own use from above). Run:
//
//	go test ./verify -run '^$' -bench Verify1M -benchtime 1x
func BenchmarkVerify1M(b *testing.B) {
	const rows = 1_000_000
	src := cluster.CreateDB(b)
	execPG(b, src, fmt.Sprintf(`CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric(12,2), created timestamptz, flag boolean, note text);
		INSERT INTO items SELECT i, 'item ' || i, i * 1.25, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second', i %% 2 = 0, repeat('x', 100)
		FROM generate_series(1, %d) i;
		ANALYZE items;`, rows))
	dst := server.CreateDB(b)
	db, err := openMySQL(dst)
	if err != nil {
		b.Fatal(err)
	}
	for _, stmt := range []string{
		"CREATE TABLE items (id BIGINT PRIMARY KEY, title LONGTEXT, price DECIMAL(12,2), created DATETIME(6), flag BOOLEAN, note LONGTEXT)",
		fmt.Sprintf("INSERT INTO items SELECT seq, CONCAT('item ', seq), seq * 1.25, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL seq SECOND, seq %% 2 = 0, REPEAT('x', 100) FROM seq_1_to_%d", rows),
	} {
		if _, err := db.Exec(stmt); err != nil {
			b.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()
	cfg := load(b, fmt.Sprintf(`
pipeline "bench" {}
source "postgres" "app" {
  dsn    = %q
  tables = ["public.items"]
}
transform "t" {
  from   = source.app
  rename = { name = "title" }
}
sink "mysql" "replica" {
  from = transform.t
  dsn  = %q
}`, src, dst))
	b.ResetTimer()
	for b.Loop() {
		rep := verify(b, cfg, Options{Rechecks: -1})
		if p := rep.Pairs[0]; !p.Equal() || p.SourceRows != rows || p.TargetRows != rows {
			b.Fatalf("%+v", p)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
}

// BenchmarkVerifyTextKeys200k is the costly case: text keys whose
// collation does not sort by bytes on either side (ICU in PostgreSQL,
// MariaDB's default), so every chunk is read by a sort of the table
// rather than by the primary-key index. Run:
//
//	go test ./verify -run '^$' -bench TextKeys200k -benchtime 1x
func BenchmarkVerifyTextKeys200k(b *testing.B) {
	const rows = 200_000
	src := cluster.CreateDB(b)
	execPG(b, src, fmt.Sprintf(`CREATE TABLE tags (tag text COLLATE "en-US-x-icu" PRIMARY KEY, n integer);
		INSERT INTO tags SELECT 'Tag-' || i, i FROM generate_series(1, %d) i;
		ANALYZE tags;`, rows))
	dst := server.CreateDB(b)
	db, err := openMySQL(dst)
	if err != nil {
		b.Fatal(err)
	}
	for _, stmt := range []string{
		"CREATE TABLE tags (tag VARCHAR(255) PRIMARY KEY, n INT)",
		fmt.Sprintf("INSERT INTO tags SELECT CONCAT('Tag-', seq), seq FROM seq_1_to_%d", rows),
	} {
		if _, err := db.Exec(stmt); err != nil {
			b.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()
	cfg := load(b, fmt.Sprintf(`
pipeline "bench" {}
source "postgres" "app" {
  dsn    = %q
  tables = ["public.tags"]
}
sink "mysql" "replica" {
  from = source.app
  dsn  = %q
}`, src, dst))
	b.ResetTimer()
	for b.Loop() {
		if p := verify(b, cfg, Options{Rechecks: -1}).Pairs[0]; !p.Equal() || p.SourceRows != rows {
			b.Fatalf("%+v", p)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
