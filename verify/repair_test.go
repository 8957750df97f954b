package verify

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// rangesText prints a pair's ranges as "from..to chunks rows extra".
func rangesText(p *Pair) []string {
	var out []string
	for _, r := range p.Ranges {
		out = append(out, fmt.Sprintf("%s..%s chunks=%d rows=%d extra=%v", strings.Join(r.From, ","), strings.Join(r.To, ","), r.Chunks, r.Rows, r.Extra))
	}
	return out
}

// TestRangesOfDifferingChunks: each differing chunk is recorded as the
// range of source primary keys (text) from the least to the greatest key
// either side holds in it, consecutive differing chunks as one range,
// with the keys only the target holds; equal chunks are not. A key
// collated otherwise than by bytes is bounded in the source's collation
// order, which is the order a re-copy reads.
func TestRangesOfDifferingChunks(t *testing.T) {
	src := cluster.CreateDB(t)
	execPG(t, src, sourceSQL)
	dst := server.CreateDB(t)
	cfg := load(t, pipelineHCL("mysql", src, dst, ""))
	copyRows(t, cfg, 1_000_000)
	opts := Options{Chunk: 500, Rechecks: -1} // items: chunks of ids 1-500, 501-1000, ...
	if items := pairFor(t, verify(t, cfg, opts), "public.items"); !items.Equal() || len(items.Ranges) != 0 || !slices.Equal(items.SourceKey, []string{"id"}) {
		t.Fatalf("an equal pair: %+v", items)
	}

	for _, sql := range []string{
		"DELETE FROM items WHERE id = 11",                             // chunk 1
		"UPDATE items SET title = 'x' WHERE id = 20",                  // chunk 1
		"UPDATE items SET qty = 99 WHERE id = 1499",                   // chunk 3
		"UPDATE items SET qty = 99 WHERE id = 1502",                   // chunk 4, next to 3
		"INSERT INTO items (id, title) VALUES (1004, 'filtered out')", // chunk 3
		"INSERT INTO items (id, title) VALUES (100000, 'only here')",  // after the last source key
	} {
		execMySQL(t, dst, sql)
	}
	items := pairFor(t, verify(t, cfg, opts), "public.items")
	// Rows with qty = id % 7 = 3 are filtered out: 1-500 has 72 of them
	// (500 is one: the chunk's last key either side holds is 499), 1001-2000
	// 143 (1004 among them).
	want := []string{
		"1..499 chunks=1 rows=428 extra=[]",
		"1001..2000 chunks=2 rows=857 extra=[[1004]]",
		"100000..100000 chunks=1 rows=0 extra=[[100000]]",
	}
	if got := rangesText(items); !slices.Equal(got, want) || items.Unrepairable != "" {
		t.Fatalf("ranges:\n got %q\nwant %q (unrepairable %q)", got, want, items.Unrepairable)
	}
	if items.Missing != 1 || items.Extra != 2 || items.Different != 3 {
		t.Fatalf("counts: %+v", items)
	}

	// words is keyed by en-US-x-icu text; verify reads it in byte order,
	// chunks of 3: (B, Z, _x), (a, ab, zz), (Ça, é). The first chunk spans
	// _x..Z in the source's order (_x, a, ab, B, Ça, é, Z, zz).
	execMySQL(t, dst, "DELETE FROM words WHERE word = 'B'")
	words := pairFor(t, verify(t, cfg, Options{Chunk: 3, Rechecks: -1}), "public.words")
	if got := rangesText(words); !slices.Equal(got, []string{"_x..Z chunks=1 rows=3 extra=[]"}) {
		t.Fatalf("words ranges: %q", got)
	}
}

// TestRangesNeedThePrimaryKey: a sink keyed by another column than the
// source's primary key gets no ranges, and says why.
func TestRangesNeedThePrimaryKey(t *testing.T) {
	src := cluster.CreateDB(t)
	execPG(t, src, `CREATE TABLE pasta (id int PRIMARY KEY, name text UNIQUE NOT NULL, cooking_minutes int);
		INSERT INTO pasta SELECT i, 'pasta ' || i, i % 15 FROM generate_series(1, 300) i;`)
	dst := server.CreateDB(t)
	cfg := load(t, fmt.Sprintf(`
pipeline "pasta" {}
source "postgres" "pg" {
  dsn    = %q
  tables = ["public.pasta"]
}
sink "mysql" "pasta" {
  from        = source.pg
  dsn         = %q
  key         = ["name"]
  auto_create = true
}`, src, dst))
	copyRows(t, cfg, 1000)
	execMySQL(t, dst, "UPDATE pasta SET cooking_minutes = 99 WHERE name = 'pasta 42'")
	p := verify(t, cfg, Options{Chunk: 50, Rechecks: -1}).Pairs[0]
	if p.Different != 1 || len(p.Ranges) != 0 || !strings.Contains(p.Unrepairable, "not the primary key (id)") {
		t.Fatalf("different %d, ranges %v, unrepairable %q", p.Different, p.Ranges, p.Unrepairable)
	}
}
