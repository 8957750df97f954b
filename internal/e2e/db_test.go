package e2e

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for reading both sides alike
	"github.com/sluice-cdc/sluice/engine/change"
)

// openPG opens a PostgreSQL database through database/sql, closed when the
// test ends.
func openPG(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openMaria opens a MariaDB database with DATETIME read as time.Time (UTC).
func openMaria(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ParseTime = true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// mustExec runs statements and fails the test on error.
func mustExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// target is a database a sink writes into: MariaDB or PostgreSQL.
type target struct {
	sink string  // the sink block type: "mysql" or "postgres"
	dsn  string  // TARGET_DSN for the pipeline
	db   *sql.DB // for the test's reads
}

// newTarget creates a fresh database of the given kind for the test.
func newTarget(t *testing.T, sink string) target {
	t.Helper()
	switch sink {
	case "mysql":
		dsn := maria.CreateDB(t)
		return target{sink: sink, dsn: dsn, db: openMaria(t, dsn)}
	case "postgres":
		dsn := pg.CreateDB(t)
		return target{sink: sink, dsn: dsn, db: openPG(t, dsn)}
	}
	t.Fatalf("unknown target %q", sink)
	return target{}
}

// checkpoint reads the position a sink committed in the target's
// sluice_checkpoints table for the stream of source; ok is false while
// there is none.
func checkpoint(db *sql.DB, pipeline, sink, source string) (pos change.Position, ok bool, err error) {
	var text string
	q := fmt.Sprintf("SELECT checkpoint FROM sluice_checkpoints WHERE pipeline = '%s' AND sink = '%s'", pipeline, sink)
	if err := db.QueryRow(q).Scan(&text); err != nil {
		if err == sql.ErrNoRows || strings.Contains(err.Error(), "exist") {
			return pos, false, nil // no table or no row yet
		}
		return pos, false, err
	}
	var cp change.Checkpoint
	if err := cp.UnmarshalJSON([]byte(text)); err != nil {
		return pos, false, err
	}
	pos, ok = cp[change.Stream{Source: source}]
	return pos, ok, nil
}

// kind says how a column is read so that both databases give the same text.
type kind int

const (
	kInt     kind = iota // any integer type
	kText                // text, varchar
	kDecimal             // numeric / DECIMAL: the exact decimal text
	kBool                // boolean / TINYINT(1)
	kTime                // timestamptz / DATETIME(6): UTC, microseconds
)

// column is one column of a compared table.
type column struct {
	name string
	kind kind
}

// rowTexts reads every row of table ordered by the key columns (the first
// nkey of cols) and renders each as one line of text, computed in Go from
// typed values so that MariaDB and PostgreSQL render a row the same way.
// quote quotes identifiers for the database.
func rowTexts(ctx context.Context, db *sql.DB, quote func(string) string, table string, cols []column, nkey int) ([]string, error) {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = quote(c.name)
	}
	q := fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", strings.Join(names, ", "), quote(table), strings.Join(names[:nkey], ", "))
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	dest := make([]any, len(cols))
	for i, c := range cols {
		switch c.kind {
		case kInt:
			dest[i] = new(sql.NullInt64)
		case kText, kDecimal:
			dest[i] = new(sql.NullString)
		case kBool:
			dest[i] = new(sql.NullBool)
		case kTime:
			dest[i] = new(sql.NullTime)
		}
	}
	var b strings.Builder
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		b.Reset()
		for i, d := range dest {
			if i > 0 {
				b.WriteByte('|')
			}
			b.WriteString(render(d))
		}
		out = append(out, b.String())
	}
	return out, rows.Err()
}

// render is the canonical text of one scanned value.
func render(d any) string {
	switch v := d.(type) {
	case *sql.NullInt64:
		if v.Valid {
			return strconv.FormatInt(v.Int64, 10)
		}
	case *sql.NullString:
		if v.Valid {
			return strconv.Quote(v.String)
		}
	case *sql.NullBool:
		if v.Valid {
			return strconv.FormatBool(v.Bool)
		}
	case *sql.NullTime:
		if v.Valid {
			return v.Time.UTC().Format("2006-01-02T15:04:05.000000Z")
		}
	}
	return "NULL"
}

// tablesEqual compares table at the PostgreSQL source with the table of
// the same name in the target by ordered checksum (cols' first column is
// the key). When they differ, diff describes the first differences.
func tablesEqual(ctx context.Context, src *sql.DB, tgt target, table string, cols []column) (equal bool, sum, diff string, err error) {
	want, err := rowTexts(ctx, src, pgQuote, table, cols, 1)
	if err != nil {
		return false, "", "", fmt.Errorf("source %s: %w", table, err)
	}
	got, err := rowTexts(ctx, tgt.db, quoteFor(tgt.sink), table, cols, 1)
	if err != nil {
		return false, "", "", fmt.Errorf("target %s: %w", table, err)
	}
	if checksum(got) == checksum(want) {
		return true, fmt.Sprintf("%d rows, checksum %s", len(want), checksum(want)), "", nil
	}
	return false, "", fmt.Sprintf("checksum %s, want %s: %s", checksum(got), checksum(want), firstDifferences(want, got, 10)), nil
}

// checksum is the ordered checksum of rendered rows.
func checksum(rows []string) string {
	h := sha256.New()
	for _, r := range rows {
		h.Write([]byte(r))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// firstDifferences describes up to n rows that differ between want
// (source) and got (target), both ordered by key, for a failure message.
func firstDifferences(want, got []string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "source has %d rows, target %d", len(want), len(got))
	key := func(r string) string { k, _, _ := strings.Cut(r, "|"); return k }
	i, j, shown := 0, 0, 0
	for (i < len(want) || j < len(got)) && shown < n {
		switch {
		case j >= len(got) || i < len(want) && keyLess(key(want[i]), key(got[j])):
			fmt.Fprintf(&b, "\n  missing in target: %s", want[i])
			i++
			shown++
		case i >= len(want) || key(want[i]) != key(got[j]):
			fmt.Fprintf(&b, "\n  extra in target:   %s", got[j])
			j++
			shown++
		default:
			if want[i] != got[j] {
				fmt.Fprintf(&b, "\n  source: %s\n  target: %s", want[i], got[j])
				shown++
			}
			i++
			j++
		}
	}
	return b.String()
}

// keyLess orders rendered keys as the databases do: integers by value.
func keyLess(a, b string) bool {
	x, errx := strconv.ParseInt(a, 10, 64)
	y, erry := strconv.ParseInt(b, 10, 64)
	if errx == nil && erry == nil {
		return x < y
	}
	return a < b
}

// quoteFor returns the identifier quoting of a sink's database.
func quoteFor(sink string) func(string) string {
	if sink == "mysql" {
		return func(s string) string { return "`" + s + "`" }
	}
	return func(s string) string { return `"` + s + `"` }
}

// pgQuote quotes a PostgreSQL identifier.
var pgQuote = quoteFor("postgres")

// queryInt runs a query returning one integer.
func queryInt(t *testing.T, db *sql.DB, q string) int64 {
	t.Helper()
	var n sql.NullInt64
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n.Int64
}
