package sqltabletest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// Bench measures upserts of new rows of a five-column table, reporting
// rows/s: "batch1000" Writes 1000 events (statements of 500 rows) and
// flushes every ten Writes, the bulk shape of a snapshot; "tx100" Writes
// and flushes every 100 events, the shape of a stream of source
// transactions of 100 rows where every commit is its own target commit.
func Bench(b *testing.B, tg Target) {
	b.Run("batch1000", func(b *testing.B) { bench(b, tg, 1000, 10) })
	b.Run("tx100", func(b *testing.B) { bench(b, tg, 100, 1) })
	b.Run("update1000", func(b *testing.B) { benchUpdate(b, tg) })
}

// benchUpdate measures mode "update" (a backfill): Writes of 1000
// updates of two listed columns of existing rows, every value changed,
// a Flush every ten Writes.
func benchUpdate(b *testing.B, tg Target) {
	const rows = 1000
	dsn := tg.CreateDB(b)
	rel := relation("people", "id bigint key", "name text", "first_name text", "last_name text")
	open := func(c dsl.TableSink) engine.Sink {
		s, err := tg.New(build, tg.block(dsn, c))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Open(ctx(b), nil); err != nil {
			b.Fatal(err)
		}
		return s
	}
	var off uint64
	batch := make([]change.Event, rows)
	fill := func(op change.Op, round int) {
		for j := range batch {
			off++
			id := int64(j + 1)
			batch[j] = change.Event{Op: op, Schema: "public", Table: "people", Relation: rel, Key: change.RowOf(map[string]any{"id": id}),
				After:    change.RowOf(map[string]any{"id": id, "name": "Ada Lovelace", "first_name": fmt.Sprint("Ada", round), "last_name": fmt.Sprint("Lovelace", round)}),
				Position: change.Position{Source: "src", Offset: off}, Boundary: true}
		}
	}
	seed := open(dsl.TableSink{AutoCreate: true})
	fill(change.Insert, -1)
	if err := seed.Write(ctx(b), batch); err != nil {
		b.Fatal(err)
	}
	if _, err := seed.Flush(ctx(b), change.Checkpoint{}); err != nil {
		b.Fatal(err)
	}
	seed.Close()
	s := open(dsl.TableSink{Mode: "update", Columns: []string{"first_name", "last_name"}})
	defer s.Close()
	cp := change.Checkpoint{}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		fill(change.Update, i)
		if err := s.Write(ctx(b), batch); err != nil {
			b.Fatal(err)
		}
		if i%10 == 9 || i == b.N-1 {
			cp.Advance(batch[rows-1].Position)
			if _, err := s.Flush(ctx(b), cp); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*rows)/time.Since(start).Seconds(), "rows/s")
}

func bench(b *testing.B, tg Target, perWrite, writesPerFlush int) {
	dsn := tg.CreateDB(b)
	s, err := tg.New(build, tg.block(dsn, dsl.TableSink{AutoCreate: true, BatchSize: 1000}))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Open(ctx(b), nil); err != nil {
		b.Fatal(err)
	}
	rel := relation("bench", "id bigint key", "name text", "email character varying(100)", "score integer", "created timestamp with time zone")
	batch := make([]change.Event, perWrite)
	cp := change.Checkpoint{}
	now := time.Now().UTC()
	var id int64
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for j := range batch {
			id++
			batch[j] = change.Event{Op: change.Insert, Schema: "public", Table: "bench", Relation: rel, Key: change.RowOf(map[string]any{"id": id}),
				After:    change.RowOf(map[string]any{"id": id, "name": fmt.Sprint("user", id), "email": "someone@example.com", "score": id % 1000, "created": now}),
				Position: change.Position{Source: "src", Offset: uint64(id)}, Boundary: true}
		}
		if err := s.Write(ctx(b), batch); err != nil {
			b.Fatal(err)
		}
		if i%writesPerFlush == writesPerFlush-1 || i == b.N-1 {
			cp.Advance(batch[perWrite-1].Position)
			if _, err := s.Flush(ctx(b), cp); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*perWrite)/time.Since(start).Seconds(), "rows/s")
}
