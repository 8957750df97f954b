package verify

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// sourceSQL creates a source table with every type the postgres source
// decodes, and a table keyed by text whose order differs between
// PostgreSQL's collations and MariaDB's.
const sourceSQL = `
CREATE TABLE items (
	id bigint PRIMARY KEY, name text, price numeric(12,2), qty integer, ratio real, score double precision,
	active boolean, created timestamptz, day date, meta jsonb, tags text[], blob bytea, code char(5),
	at time, uid uuid, secret text);
INSERT INTO items SELECT i, 'item ' || i, i * 1.25, i % 7, i / 3.0, i / 7.0, i % 2 = 0,
	timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second 1 microsecond', date '2026-01-01' + i,
	jsonb_build_object('i', i, 'half', i / 2.0, 'tags', jsonb_build_array('a', 'b')),
	ARRAY['x' || i, 'y'], decode(md5(i::text), 'hex'), 'c' || (i % 100),
	time '12:00:00' + i * interval '1 ms', md5(i::text)::uuid, 'hunter2'
FROM generate_series(1, 2500) i;
CREATE TABLE words (word text COLLATE "en-US-x-icu" PRIMARY KEY, n integer);
INSERT INTO words VALUES ('B', 1), ('a', 2), ('é', 3), ('Z', 4), ('ab', 5), ('zz', 6), ('Ça', 7), ('_x', 8);`

// pipelineHCL replicates both tables into one database sink, through a
// transform that filters, renames and (by the source's exclude) drops a
// column: verify must expect exactly what the sink received.
func pipelineHCL(sinkType, srcDSN, tgtDSN, extra string) string {
	return fmt.Sprintf(`
pipeline "verify_test" {}

source "postgres" "app" {
  dsn     = %q
  tables  = ["public.items", "public.words"]
  exclude = ["public.items.secret"]
}

transform "t" {
  from   = source.app
  tables = ["public.items"]
  where  = "row.qty != 3"
  rename = { name = "title" }
}

sink %q "replica" {
  from        = transform.t
  dsn         = %q
  auto_create = true
  %s
}
`, srcDSN, sinkType, tgtDSN, extra)
}

// target is one kind of database sink under test.
type target struct {
	sink   string
	create func(t *testing.T) string
	exec   func(t *testing.T, dsn, sql string)
}

func targets() []target {
	return []target{
		{"mysql", func(t *testing.T) string { return server.CreateDB(t) }, execMySQL},
		{"postgres", func(t *testing.T) string { return cluster.CreateDB(t) }, func(t *testing.T, dsn, sql string) { execPG(t, dsn, sql) }},
	}
}

func execMySQL(t *testing.T, dsn, sql string) {
	t.Helper()
	db, err := openMySQL(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// diffKeys lists a pair's differences as "kind key" strings, sorted.
func diffKeys(p *Pair) []string {
	var out []string
	for _, d := range p.Diffs {
		var cols []string
		for _, c := range d.Columns {
			cols = append(cols, c.Column)
		}
		out = append(out, fmt.Sprintf("%s %v %v", d.Kind, d.Key["id"], cols))
	}
	sort.Strings(out)
	return out
}

func pairFor(t *testing.T, rep *Report, table string) *Pair {
	t.Helper()
	for _, p := range rep.Pairs {
		if p.Table == table {
			return p
		}
	}
	t.Fatalf("no pair for %s in %+v", table, rep.Pairs)
	return nil
}

// TestCopyIsEqualThenSixDifferences is the acceptance test: a target
// filled by the sink is equal to the source (every type, through the
// transforms, in chunks); after deleting 3 target rows, changing 2 and
// inserting 1, verify reports exactly those 6 keys, and the columns of
// the changed ones.
func TestCopyIsEqualThenSixDifferences(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.sink, func(t *testing.T) {
			src := cluster.CreateDB(t)
			execPG(t, src, sourceSQL)
			dst := tg.create(t)
			cfg := load(t, pipelineHCL(tg.sink, src, dst, ""))
			copyRows(t, cfg, 1_000_000)
			opts := Options{Chunk: 1500, Rechecks: -1} // 2 chunks, each routed in batches of routeBatch

			rep := verify(t, cfg, opts)
			for _, p := range rep.Pairs {
				if !p.Equal() {
					t.Fatalf("after a copy, %s → %s differs: %+v", p.Table, p.Target, p)
				}
			}
			items := pairFor(t, rep, "public.items")
			// qty = i % 7 == 3 is filtered out: 357 of 2500 rows.
			if items.SourceRows != 2143 || items.TargetRows != 2143 || items.Chunks != 2 {
				t.Fatalf("items: %d source rows, %d target rows in %d chunks; want 2143, 2143, 2", items.SourceRows, items.TargetRows, items.Chunks)
			}
			if words := pairFor(t, rep, "public.words"); words.SourceRows != 8 || words.TargetRows != 8 {
				t.Fatalf("words: %d source rows, %d target rows; want 8", words.SourceRows, words.TargetRows)
			}

			for _, sql := range []string{
				"DELETE FROM items WHERE id IN (11, 1201, 2402)",
				"UPDATE items SET title = 'changed' WHERE id = 20",
				"UPDATE items SET price = 0.01 WHERE id = 1000",
				"INSERT INTO items (id, title) VALUES (100000, 'extra')",
			} {
				tg.exec(t, dst, sql)
			}
			rep = verify(t, cfg, opts)
			items = pairFor(t, rep, "public.items")
			want := []string{
				"different 1000 [price]", "different 20 [title]",
				"extra 100000 []",
				"missing 11 []", "missing 1201 []", "missing 2402 []",
			}
			if got := diffKeys(items); !slices.Equal(got, want) {
				t.Fatalf("differences:\n got %q\nwant %q", got, want)
			}
			if items.Missing != 3 || items.Extra != 1 || items.Different != 2 || rep.Equal() {
				t.Fatalf("counts: missing %d, extra %d, different %d; want 3, 1, 2", items.Missing, items.Extra, items.Different)
			}
			for _, d := range items.Diffs {
				if d.Kind == "different" && d.Key["id"] == int64(20) {
					if c := d.Columns[0]; c.Source != "item 20" || c.Target != "changed" {
						t.Fatalf("id 20 title: source %v, target %v", c.Source, c.Target)
					}
				}
			}
			if !pairFor(t, rep, "public.words").Equal() {
				t.Fatal("words changed although nothing touched it")
			}
		})
	}
}

// TestMaxDiffsBoundsTheList: counts stay exact, the list stops.
func TestMaxDiffsBoundsTheList(t *testing.T) {
	src := cluster.CreateDB(t)
	execPG(t, src, sourceSQL)
	dst := server.CreateDB(t)
	cfg := load(t, pipelineHCL("mysql", src, dst, ""))
	copyRows(t, cfg, 1_000_000)
	execMySQL(t, dst, "DELETE FROM items WHERE id <= 100")
	rep := verify(t, cfg, Options{Chunk: 1000, MaxDiffs: 5, Rechecks: -1})
	items := pairFor(t, rep, "public.items")
	if items.Missing != 86 || len(items.Diffs) != 5 || !items.Truncated {
		t.Fatalf("missing %d, listed %d, truncated %v; want 86, 5, true", items.Missing, len(items.Diffs), items.Truncated)
	}
}

// TestSoftDelete: rows flagged __deleted are the deleted ones.
func TestSoftDelete(t *testing.T) {
	src := cluster.CreateDB(t)
	execPG(t, src, sourceSQL)
	dst := server.CreateDB(t)
	cfg := load(t, pipelineHCL("mysql", src, dst, `delete = "soft"`))
	copyRows(t, cfg, 1_000_000)
	// A row the source deleted stays in the target, flagged.
	execMySQL(t, dst, "INSERT INTO items (id, title, __deleted) VALUES (5000, 'gone', true)")
	if rep := verify(t, cfg, Options{Rechecks: -1}); !rep.Equal() {
		t.Fatalf("a soft-deleted row counts as a difference: %+v", pairFor(t, rep, "public.items"))
	}
	// A row still in the source but flagged deleted is missing.
	execMySQL(t, dst, "UPDATE items SET __deleted = true WHERE id = 8")
	rep := verify(t, cfg, Options{Rechecks: -1})
	if got := diffKeys(pairFor(t, rep, "public.items")); !slices.Equal(got, []string{"missing 8 []"}) {
		t.Fatalf("got %q, want the soft-deleted id 8 missing", got)
	}
}

// TestRecheckWaitsForALaggingPipeline: a difference that the pipeline
// repairs while verify waits is not reported.
func TestRecheckWaitsForALaggingPipeline(t *testing.T) {
	src := cluster.CreateDB(t)
	execPG(t, src, sourceSQL)
	dst := cluster.CreateDB(t)
	cfg := load(t, pipelineHCL("postgres", src, dst, ""))
	copyRows(t, cfg, 1_000_000)
	// The source moves on; the "pipeline" applies it while verify waits
	// to read the differing chunk again.
	execPG(t, src, "UPDATE items SET name = 'late' WHERE id = 40")
	opts := Options{Rechecks: 3, RecheckWait: time.Millisecond}
	opts.onRecheck = func() { execPG(t, dst, "UPDATE items SET title = 'late' WHERE id = 40") }
	rep := verify(t, cfg, opts)
	items := pairFor(t, rep, "public.items")
	if !rep.Equal() || items.Rechecked != 1 {
		t.Fatalf("equal %v after %d rechecks: %+v", rep.Equal(), items.Rechecked, items.Diffs)
	}
	// A difference that stays is reported after the last re-read.
	execPG(t, src, "UPDATE items SET name = 'later' WHERE id = 40")
	opts.onRecheck = nil
	if items := pairFor(t, verify(t, cfg, opts), "public.items"); items.Rechecked != 3 || items.Different != 1 {
		t.Fatalf("a lasting difference after %d rechecks: %+v", items.Rechecked, items)
	}
}

// TestEveryTypeDifferenceIsSeen changes one column of one row at a time
// in the target: the normalisation that makes equal values compare equal
// across databases must not make different values equal.
func TestEveryTypeDifferenceIsSeen(t *testing.T) {
	changes := map[string]string{
		"title":   "title = 'item 2 '",
		"price":   "price = 2.51",
		"qty":     "qty = qty + 100",
		"ratio":   "ratio = 0.66",
		"score":   "score = 0.2857142857",
		"active":  "active = NOT active",
		"created": "created = created + interval '1 microsecond'",
		"day":     "day = day + 1",
		"meta":    `meta = '{"i": 2, "half": 1, "tags": ["b", "a"]}'`,
		"tags":    "tags = ARRAY['x2']",
		"blob":    `blob = '\x00'`,
		"code":    "code = 'zz'",
		"at":      "at = '12:00:00.003'",
		"uid":     "uid = '00000000-0000-0000-0000-000000000000'",
	}
	mysql := map[string]string{
		"created": "created = created + INTERVAL 1 MICROSECOND",
		"day":     "day = day + INTERVAL 1 DAY",
		"tags":    `tags = '["x2"]'`,
		"blob":    "`blob` = X'00'",
	}
	for _, tg := range targets() {
		t.Run(tg.sink, func(t *testing.T) {
			src := cluster.CreateDB(t)
			execPG(t, src, sourceSQL)
			dst := tg.create(t)
			cfg := load(t, pipelineHCL(tg.sink, src, dst, ""))
			copyRows(t, cfg, 1_000_000)
			id := 100
			var want []string
			for col, set := range changes {
				if s, ok := mysql[col]; ok && tg.sink == "mysql" {
					set = s
				}
				id++
				if id%7 == 3 {
					id++
				}
				tg.exec(t, dst, fmt.Sprintf("UPDATE items SET %s WHERE id = %d", set, id))
				want = append(want, fmt.Sprintf("different %d [%s]", id, col))
			}
			sort.Strings(want)
			rep := verify(t, cfg, Options{Rechecks: -1})
			if got := diffKeys(pairFor(t, rep, "public.items")); !slices.Equal(got, want) {
				t.Fatalf("differences:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestTextKeysInSmallChunks: keys whose order differs between
// PostgreSQL's and MariaDB's collations still line up chunk by chunk.
func TestTextKeysInSmallChunks(t *testing.T) {
	src := cluster.CreateDB(t)
	execPG(t, src, sourceSQL)
	dst := server.CreateDB(t)
	cfg := load(t, pipelineHCL("mysql", src, dst, ""))
	copyRows(t, cfg, 1_000_000)
	rep := verify(t, cfg, Options{Chunk: 2, Rechecks: -1})
	words := pairFor(t, rep, "public.words")
	if !words.Equal() || words.SourceRows != 8 || words.Chunks != 5 {
		t.Fatalf("words in chunks of 2: %+v", words)
	}
	execMySQL(t, dst, "DELETE FROM words WHERE word = 'Ça'")
	words = pairFor(t, verify(t, cfg, Options{Chunk: 2, Rechecks: -1}), "public.words")
	if words.Missing != 1 || words.Extra+words.Different != 0 || words.Diffs[0].Key["word"] != "Ça" {
		t.Fatalf("after deleting Ça: %+v", words)
	}
	// A target denser than the source is read in chunks of its own keys
	// (never more than Chunk rows at once), to the end.
	execMySQL(t, dst, "INSERT INTO words SELECT CONCAT('zz', seq), seq FROM seq_1_to_25")
	words = pairFor(t, verify(t, cfg, Options{Chunk: 2, Rechecks: -1}), "public.words")
	if words.Missing != 1 || words.Extra != 25 || words.TargetRows != 32 || words.Chunks < 16 {
		t.Fatalf("after 25 rows only the target has: %+v", words)
	}
}

// TestSinkKeyAndModes covers a sink keyed by another column than the
// source's primary key, delete = "skip" and mode = "update".
func TestSinkKeyAndModes(t *testing.T) {
	src := cluster.CreateDB(t)
	execPG(t, src, `CREATE TABLE pasta (id int PRIMARY KEY, name text UNIQUE NOT NULL, cooking_minutes int);
		INSERT INTO pasta SELECT i, 'pasta ' || i, i % 15 FROM generate_series(1, 300) i;`)
	hcl := func(dst, extra string) string {
		return fmt.Sprintf(`
pipeline "pasta" {}
source "postgres" "pg" {
  dsn    = %q
  tables = ["public.pasta"]
}
sink "mysql" "pasta" {
  from        = source.pg
  dsn         = %q
  table       = "pasta_mysql"
  key         = ["name"]
  auto_create = true
  %s
}`, src, dst, extra)
	}
	t.Run("key", func(t *testing.T) {
		dst := server.CreateDB(t)
		cfg := load(t, hcl(dst, ""))
		copyRows(t, cfg, 1000)
		rep := verify(t, cfg, Options{Chunk: 50, Rechecks: -1})
		if p := rep.Pairs[0]; !p.Equal() || !slices.Equal(p.Key, []string{"name"}) || p.SourceRows != 300 {
			t.Fatalf("%+v", p)
		}
		execMySQL(t, dst, "UPDATE pasta_mysql SET cooking_minutes = 99 WHERE name = 'pasta 42'")
		p := verify(t, cfg, Options{Chunk: 50, Rechecks: -1}).Pairs[0]
		if p.Different != 1 || p.Diffs[0].Key["name"] != "pasta 42" || p.Diffs[0].Columns[0].Column != "cooking_minutes" {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("skip", func(t *testing.T) {
		dst := server.CreateDB(t)
		cfg := load(t, hcl(dst, `delete = "skip"`))
		copyRows(t, cfg, 1000)
		execMySQL(t, dst, "INSERT INTO pasta_mysql (id, name) VALUES (1000, 'deleted at the source')")
		if p := verify(t, cfg, Options{Rechecks: -1}).Pairs[0]; !p.Equal() {
			t.Fatalf("delete = skip keeps deleted rows, yet: %+v", p)
		}
	})
	t.Run("update", func(t *testing.T) {
		dst := server.CreateDB(t)
		execMySQL(t, dst, "CREATE TABLE pasta_mysql (id int, name varchar(255) PRIMARY KEY, cooking_minutes int, note text)")
		execMySQL(t, dst, "INSERT INTO pasta_mysql (id, name, cooking_minutes, note) VALUES (1, 'pasta 1', 1, 'kept'), (2, 'pasta 2', 7, 'kept'), (999, 'not in source', 3, 'x')")
		cfg := load(t, hcl(dst, `mode = "update"
  columns = ["cooking_minutes"]`))
		p := verify(t, cfg, Options{Rechecks: -1}).Pairs[0]
		if p.Different != 1 || p.Missing+p.Extra != 0 || p.Diffs[0].Key["name"] != "pasta 2" {
			t.Fatalf("mode update compares the listed columns of rows both sides have: %+v", p)
		}
	})
}

// TestUncomparablePairs are reported, not guessed at.
func TestUncomparablePairs(t *testing.T) {
	src := cluster.CreateDB(t)
	execPG(t, src, sourceSQL)
	dst := server.CreateDB(t)
	cfg := load(t, fmt.Sprintf(`
pipeline "odd" {}
source "postgres" "app" {
  dsn    = %q
  tables = ["public.words"]
}
transform "shout" {
  from = source.app
  set  = { word = "upper(after.word)" }
}
sink "mysql" "computed" {
  from = transform.shout
  dsn  = %q
  key  = ["word"]
}
sink "mysql" "history" {
  from = source.app
  dsn  = %q
  mode = "append"
}
sink "file" "out" {
  from = source.app
  path = %q
}`, src, dst, dst, t.TempDir()+"/out.jsonl"))
	rep := verify(t, cfg, Options{Rechecks: -1})
	got := map[string]string{}
	for _, p := range rep.Pairs {
		got[p.Sink] = p.Skipped + p.Error
	}
	for sink, want := range map[string]string{"computed": "computed by transform", "history": `mode "append"`, "out": "file sink"} {
		if !strings.Contains(got[sink], want) {
			t.Errorf("sink %s: %q, want it to say %q", sink, got[sink], want)
		}
	}
	if rep.Equal() {
		t.Fatal("a report with uncompared pairs is not equal")
	}
}

// TestSplitNameBackfill is LANGUAGE.md's split_name pipeline: a mode =
// "update" sink writing computed columns back into the source table.
// Verify compares the computed columns with what the table holds.
func TestSplitNameBackfill(t *testing.T) {
	db := cluster.CreateDB(t)
	execPG(t, db, `CREATE TABLE users (id int PRIMARY KEY, name text, first_name text, last_name text);
		INSERT INTO users (id, name) SELECT i, CASE i % 3 WHEN 0 THEN 'Ann Lee ' || i WHEN 1 THEN 'Bob' || i ELSE 'Carla de Souza' || i END FROM generate_series(1, 900) i;`)
	cfg := load(t, fmt.Sprintf(`
pipeline "split_name" {}
source "postgres" "app" {
  dsn    = %q
  tables = ["public.users"]
}
transform "split" {
  from  = source.app
  where = "op != 'delete'"
  set = {
    first_name = "split(after.name, ' ')[0]"
    last_name  = "len(split(after.name, ' ')) > 1 ? join(split(after.name, ' ')[1:], ' ') : nil"
  }
}
sink "postgres" "same_table" {
  from    = transform.split
  dsn     = %q
  table   = "users"
  mode    = "update"
  columns = ["first_name", "last_name"]
}`, db, db))
	opts := Options{Chunk: 100, Rechecks: -1}
	if p := verify(t, cfg, opts).Pairs[0]; p.Different != 900 {
		t.Fatalf("before the backfill every row differs: %+v", p)
	}
	execPG(t, db, `UPDATE users SET first_name = split_part(name, ' ', 1),
		last_name = CASE WHEN position(' ' in name) > 0 THEN substring(name from position(' ' in name) + 1) END`)
	if p := verify(t, cfg, opts).Pairs[0]; !p.Equal() || p.SourceRows != 900 {
		t.Fatalf("after the backfill: %+v", p)
	}
	execPG(t, db, `UPDATE users SET last_name = NULL WHERE id = 302`)
	p := verify(t, cfg, opts).Pairs[0]
	if p.Different != 1 || p.Diffs[0].Key["id"] != int64(302) || p.Diffs[0].Columns[0] != (ColumnDiff{"last_name", "de Souza302", nil}) {
		t.Fatalf("after clearing one last_name: %+v", p)
	}
}

// TestCompositeKeys: a key of text (collated), timestamp and integer
// columns bounds chunks column by column on both sides.
func TestCompositeKeys(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.sink, func(t *testing.T) {
			src := cluster.CreateDB(t)
			execPG(t, src, `CREATE TABLE ledger (tenant text COLLATE "en-US-x-icu", at timestamptz, seq int, amount numeric(10,2),
				PRIMARY KEY (tenant, at, seq));
				INSERT INTO ledger SELECT CASE i % 3 WHEN 0 THEN 'acme' WHEN 1 THEN 'Zeta' ELSE 'beta' END,
					timestamptz '2026-03-01 00:00:00.5+00' + (i / 4) * interval '1 minute', i % 4, i / 100.0
				FROM generate_series(1, 400) i;`)
			dst := tg.create(t)
			cfg := load(t, fmt.Sprintf(`
pipeline "ledger" {}
source "postgres" "app" {
  dsn    = %q
  tables = ["public.ledger"]
}
sink %q "copy" {
  from        = source.app
  dsn         = %q
  auto_create = true
}`, src, tg.sink, dst))
			copyRows(t, cfg, 1000)
			opts := Options{Chunk: 7, Rechecks: -1}
			if p := verify(t, cfg, opts).Pairs[0]; !p.Equal() || p.SourceRows != 400 || p.Chunks != 58 {
				t.Fatalf("%+v", p)
			}
			tg.exec(t, dst, "DELETE FROM ledger WHERE tenant = 'beta' AND seq = 2 AND amount = 1.34")
			tg.exec(t, dst, "UPDATE ledger SET amount = 99 WHERE tenant = 'Zeta' AND amount = 3.97")
			p := verify(t, cfg, opts).Pairs[0]
			if p.Missing != 1 || p.Different != 1 || p.Extra != 0 {
				t.Fatalf("%+v", p)
			}
			var got []string
			for _, d := range p.Diffs {
				got = append(got, fmt.Sprint(d.Kind, " ", d.Key["tenant"], " ", d.Key["at"], " ", d.Key["seq"]))
			}
			sort.Strings(got)
			// amount = i / 100 of row i: 1.34 is row 134, 3.97 row 397.
			want := []string{"different Zeta 2026-03-01T01:39:00.5Z 1", "missing beta 2026-03-01T00:33:00.5Z 2"}
			if !slices.Equal(got, want) {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}
