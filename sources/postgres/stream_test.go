package postgres

import (
	"reflect"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

const everythingDDL = `
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE everything (
	id bigint PRIMARY KEY, s smallint, i integer, n numeric(30,10), r real, d double precision,
	t text, v varchar(10), c char(3), b boolean, dt date, tm time, ts timestamp, tz timestamptz,
	iv interval, u uuid, j json, jb jsonb, by bytea, arr int[], tarr text[], grid int[][], m mood, p posint, nul text)`

const everythingRow = `(%d, -32768, 2147483647, 12345678901234567890.0123456789, 1.5, 3.141592653589793,
	'héllo', 'varchar', 'ab', true, '2026-01-02', '03:04:05.123', '2026-01-02 03:04:05.123456', '2026-01-02 03:04:05.123456+02',
	'1 day 02:00:00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1}', '{"b": [1, 2]}', '\x00ff10', '{1,NULL,3}',
	'{"x y","q\"uote",NULL}', '{{1,2},{3,4}}', 'happy', 7, NULL)`

func everythingExpected(id int64) change.Row {
	return change.RowOf(map[string]any{
		"id": id, "s": int64(-32768), "i": int64(2147483647), "n": change.Numeric("12345678901234567890.0123456789"),
		"r": 1.5, "d": 3.141592653589793, "t": "héllo", "v": "varchar", "c": "ab ", "b": true,
		"dt": time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), "tm": "03:04:05.123",
		"ts": time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC), "tz": time.Date(2026, 1, 2, 1, 4, 5, 123456000, time.UTC),
		"iv": "1 day 02:00:00", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "j": change.JSON(`{"a": 1}`), "jb": change.JSON(`{"b": [1, 2]}`),
		"by": []byte{0, 0xff, 0x10}, "arr": []any{int64(1), nil, int64(3)}, "tarr": []any{"x y", `q"uote`, nil},
		"grid": []any{[]any{int64(1), int64(2)}, []any{int64(3), int64(4)}}, "m": "happy", "p": int64(7), "nul": nil,
	})
}

func TestTypesDecodeTheSameInSnapshotAndStream(t *testing.T) {
	d := newDB(t)
	d.exec(everythingDDL)
	d.exec(`INSERT INTO everything VALUES ` + sprintf(everythingRow, 1))
	p := d.open(dsl.PostgresSource{Tables: []string{"public.everything"}}, nil, newState())
	snap := readUntil(t, p, countRows(1))
	d.exec(`INSERT INTO everything VALUES ` + sprintf(everythingRow, 2))
	ev := rows(readUntil(t, p, countRows(1)))

	if snap[0].Op != change.Snapshot || ev[0].Op != change.Insert {
		t.Fatalf("ops: %v, %v", snap[0].Op, ev[0].Op)
	}
	for _, c := range []struct {
		name string
		e    change.Event
		id   int64
	}{{"snapshot", snap[0], 1}, {"stream", ev[0], 2}} {
		want := everythingExpected(c.id)
		for k, v := range want.All() {
			if got, ok := c.e.After.Lookup(k); !ok || !equalValue(got, v) {
				t.Errorf("%s: column %s = %#v (present %v), want %#v", c.name, k, got, ok, v)
			}
		}
		if c.e.After.Len() != want.Len() {
			t.Errorf("%s: %d columns, want %d", c.name, c.e.After.Len(), want.Len())
		}
		if !sameRow(c.e.Key, change.RowOf(map[string]any{"id": c.id})) {
			t.Errorf("%s: key %v", c.name, c.e.Key)
		}
		col, _ := c.e.Relation.Column("n")
		if col.Type != "numeric(30,10)" || !c.e.Relation.Columns[0].Key || !c.e.Relation.Columns[0].NotNull {
			t.Errorf("%s: relation %+v", c.name, c.e.Relation.Columns[:2])
		}
	}
	if snap[0].Relation != ev[0].Relation {
		t.Errorf("an unchanged table got a new Relation when streaming started: %+v vs %+v", snap[0].Relation, ev[0].Relation)
	}
	if snap[0].Position.Compare(ev[0].Position) >= 0 {
		t.Errorf("snapshot position %v not before stream position %v", snap[0].Position, ev[0].Position)
	}
}

func equalValue(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb) && ta.Location() == time.UTC
	}
	return reflect.DeepEqual(a, b)
}

func TestTransactionsArriveWholeInCommitOrder(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE acct (id int PRIMARY KEY, bal int)`)
	p := d.open(dsl.PostgresSource{Tables: []string{"public.acct"}, Snapshot: "never"}, nil, newState())

	// Two interleaved transactions: B commits first although A began first.
	a, b := &db{t: t, dsn: d.dsn, conn: mustConnect(t, d.dsn)}, d
	a.exec("BEGIN")
	a.exec("INSERT INTO acct VALUES (1, 10)")
	b.exec("BEGIN")
	b.exec("INSERT INTO acct VALUES (2, 20)")
	a.exec("INSERT INTO acct VALUES (3, 30)")
	b.exec("INSERT INTO acct VALUES (4, 40)")
	b.exec("COMMIT")
	a.exec("UPDATE acct SET bal = bal + 1 WHERE id IN (1, 3)")
	a.exec("COMMIT")

	ev := readUntil(t, p, untilMarks(2))
	type got struct {
		op    change.Op
		id    any
		index uint32
	}
	var seq []got
	for _, e := range ev {
		var id any
		if e.Op != change.Mark {
			id = e.Key.Get("id")
		}
		seq = append(seq, got{e.Op, id, e.Position.Index})
	}
	want := []got{
		{change.Insert, int64(2), 0}, {change.Insert, int64(4), 1}, {change.Mark, nil, commitIndex},
		{change.Insert, int64(1), 0}, {change.Insert, int64(3), 1}, {change.Update, int64(1), 2}, {change.Update, int64(3), 3}, {change.Mark, nil, commitIndex},
	}
	if !reflect.DeepEqual(seq, want) {
		t.Fatalf("events\n got %v\nwant %v", seq, want)
	}
	for i, e := range ev {
		if e.Boundary != (e.Op == change.Mark) {
			t.Errorf("event %d (%v): Boundary = %v", i, e.Op, e.Boundary)
		}
		if i > 0 && ev[i-1].Position.Compare(e.Position) >= 0 {
			t.Errorf("positions not increasing at %d: %v then %v", i, ev[i-1].Position, e.Position)
		}
		if e.Tx.ID == 0 || e.Tx.CommitTime.IsZero() {
			t.Errorf("event %d has no transaction: %+v", i, e.Tx)
		}
	}
	if ev[0].Tx.ID == ev[3].Tx.ID || ev[0].Position.Offset >= ev[3].Position.Offset {
		t.Errorf("transactions mixed or out of commit order: %+v / %+v", ev[0].Position, ev[3].Position)
	}
	// DEFAULT identity: the update's before holds the key only.
	if u := ev[5]; !sameRow(u.Before, change.RowOf(map[string]any{"id": int64(1)})) || !sameRow(u.After, change.RowOf(map[string]any{"id": int64(1), "bal": int64(11)})) {
		t.Errorf("update: before %v after %v", u.Before, u.After)
	}
}
