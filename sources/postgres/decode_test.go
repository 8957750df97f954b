package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/sluice-cdc/sluice/engine/change"
)

func TestDecodeText(t *testing.T) {
	r := newTypeRegistry()
	r.m[90001] = pgType{kind: kArray, elem: 1700, delim: ','}
	for _, tc := range []struct {
		name string
		oid  uint32
		text string
		want any
	}{
		{"bigint", 20, "-9223372036854775808", int64(math.MinInt64)},
		{"numeric stays exact", 1700, "0.1000000000000000000000000001", change.Numeric("0.1000000000000000000000000001")},
		{"numeric NaN", 1700, "NaN", change.Numeric("NaN")},
		{"double infinity", 701, "-Infinity", math.Inf(-1)},
		{"bool", 16, "f", false},
		{"date", 1082, "1999-12-31", time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)},
		{"date infinity stays text", 1082, "infinity", "infinity"},
		{"timestamp µs", 1114, "2026-03-04 05:06:07.000001", time.Date(2026, 3, 4, 5, 6, 7, 1000, time.UTC)},
		{"timestamptz half-hour zone", 1184, "2026-03-04 05:06:07+05:30", time.Date(2026, 3, 3, 23, 36, 7, 0, time.UTC)},
		{"timestamptz BC stays text", 1184, "0044-03-15 12:00:00+00 BC", "0044-03-15 12:00:00+00 BC"},
		{"bytea", 17, `\xdeadbeef`, []byte{0xde, 0xad, 0xbe, 0xef}},
		{"jsonb", 3802, `{"a": [1]}`, change.JSON(`{"a": [1]}`)},
		{"empty array", 1007, "{}", []any{}},
		{"array with bounds", 1007, "[0:1]={5,6}", []any{int64(5), int64(6)}},
		{"text array escapes", 1009, `{"a,b","c\\d",NULL,plain}`, []any{"a,b", `c\d`, nil, "plain"}},
		{"numeric array via catalog type", 90001, "{1.5,NULL}", []any{change.Numeric("1.5"), nil}},
		{"unknown type keeps text", 99999, "(1,2)", "(1,2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.decode(tc.oid, []byte(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decode(%d, %q) = %#v, want %#v", tc.oid, tc.text, got, tc.want)
			}
		})
	}
	for _, bad := range []struct {
		oid  uint32
		text string
	}{{20, "12x"}, {17, "not hex"}, {1007, "{1,2"}, {1007, `{"unterminated}`}, {1007, "{1}}"}} {
		if _, err := r.decode(bad.oid, []byte(bad.text)); err == nil {
			t.Errorf("decode(%d, %q): no error", bad.oid, bad.text)
		}
	}
}

// pgoutput message builders for decoder tests and the fuzz corpus.
func msgBegin(lsn uint64, xid uint32) []byte {
	b := []byte{'B'}
	b = binary.BigEndian.AppendUint64(b, lsn)
	b = binary.BigEndian.AppendUint64(b, 0)
	return binary.BigEndian.AppendUint32(b, xid)
}

func msgCommit(lsn uint64) []byte {
	b := []byte{'C', 0}
	b = binary.BigEndian.AppendUint64(b, lsn)
	b = binary.BigEndian.AppendUint64(b, lsn+8)
	return binary.BigEndian.AppendUint64(b, 0)
}

func msgRelation(id uint32) []byte {
	b := []byte{'R'}
	b = binary.BigEndian.AppendUint32(b, id)
	b = append(b, "public\x00t\x00"...)
	b = append(b, 'd')
	b = binary.BigEndian.AppendUint16(b, 2)
	b = append(b, 1)
	b = append(b, "id\x00"...)
	b = binary.BigEndian.AppendUint32(b, 23)
	b = binary.BigEndian.AppendUint32(b, math.MaxUint32)
	b = append(b, 0)
	b = append(b, "body\x00"...)
	b = binary.BigEndian.AppendUint32(b, 25)
	return binary.BigEndian.AppendUint32(b, math.MaxUint32)
}

func msgTuple(b []byte, cols ...string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(cols)))
	for _, c := range cols {
		switch c {
		case "<null>":
			b = append(b, 'n')
		case "<toast>":
			b = append(b, 'u')
		default:
			b = append(b, 't')
			b = binary.BigEndian.AppendUint32(b, uint32(len(c)))
			b = append(b, c...)
		}
	}
	return b
}

func msgInsert(id uint32, cols ...string) []byte {
	b := binary.BigEndian.AppendUint32([]byte{'I'}, id)
	return msgTuple(append(b, 'N'), cols...)
}

func msgUpdate(id uint32, cols ...string) []byte {
	b := binary.BigEndian.AppendUint32([]byte{'U'}, id)
	return msgTuple(append(b, 'N'), cols...)
}

func TestDecoderWithoutCatalog(t *testing.T) {
	d := newDecoder("src", newTypeRegistry(), nil)
	var ev []change.Event
	var err error
	for _, m := range [][]byte{msgBegin(100, 7), msgRelation(1), msgInsert(1, "1", "x"), msgUpdate(1, "1", "<toast>"), msgCommit(100)} {
		if ev, err = d.decode(context.Background(), m, ev); err != nil {
			t.Fatal(err)
		}
	}
	if len(ev) != 3 || ev[0].After.Get("id") != int64(1) || ev[0].After.Get("body") != "x" {
		t.Fatalf("events %+v", ev)
	}
	if _, ok := ev[1].After.Lookup("body"); ok {
		t.Fatalf("unchanged TOAST column present in after: %v", ev[1].After)
	}
	if ev[2].Op != change.Mark || ev[2].Position != (change.Position{Source: "src", Offset: 100, Index: commitIndex}) || ev[1].Tx.ID != 7 {
		t.Fatalf("mark %+v", ev[2])
	}
	// A change before its relation, or outside a transaction, is an error.
	if _, err := newDecoder("src", newTypeRegistry(), nil).decode(context.Background(), msgInsert(9, "1"), nil); err == nil {
		t.Fatal("insert of an unknown relation decoded")
	}
}

// TestDecoderOldTuplesAndToast: an unchanged TOAST value is taken from
// the old row when it has it and is otherwise absent (never NULL), an old
// key tuple gives a before of the key columns only, and every row of a
// relation shares its Columns.
func TestDecoderOldTuplesAndToast(t *testing.T) {
	upd := func(kind byte, old []string, cols ...string) []byte {
		b := binary.BigEndian.AppendUint32([]byte{'U'}, 1)
		if old != nil {
			b = append(msgTuple(append(b, kind), old...), 'N')
		} else {
			b = append(b, 'N')
		}
		return msgTuple(b, cols...)
	}
	del := msgTuple(append(binary.BigEndian.AppendUint32([]byte{'D'}, 1), 'K'), "2", "<null>")
	d := newDecoder("src", newTypeRegistry(), nil)
	var ev []change.Event
	var err error
	for _, m := range [][]byte{msgBegin(100, 7), msgRelation(1),
		upd('O', []string{"1", "big"}, "1", "<toast>"), // FULL: the old row has the value
		upd('K', []string{"1", "<null>"}, "2", "y"),    // a key change: the old key
		upd(0, nil, "2", "<toast>"),                    // DEFAULT, no key change
		del, msgCommit(100)} {
		if ev, err = d.decode(context.Background(), m, ev); err != nil {
			t.Fatal(err)
		}
	}
	if len(ev) != 5 {
		t.Fatalf("%d events: %+v", len(ev), ev)
	}
	row := func(m map[string]any) change.Row { return change.RowOf(m) }
	for i, want := range []struct {
		before, after, key map[string]any
		changed            []string
	}{
		{map[string]any{"id": int64(1), "body": "big"}, map[string]any{"id": int64(1), "body": "big"}, map[string]any{"id": int64(1)}, nil},
		{map[string]any{"id": int64(1)}, map[string]any{"id": int64(2), "body": "y"}, map[string]any{"id": int64(2)}, []string{"id", "body"}},
		{map[string]any{"id": int64(2)}, map[string]any{"id": int64(2)}, map[string]any{"id": int64(2)}, nil},
		{map[string]any{"id": int64(2)}, nil, map[string]any{"id": int64(2)}, nil},
	} {
		e := ev[i]
		if !sameRow(e.Before, row(want.before)) || !sameRow(e.After, row(want.after)) || !sameRow(e.Key, row(want.key)) || !reflect.DeepEqual(e.Changed, want.changed) {
			t.Errorf("event %d (%s): before %v after %v key %v changed %v; want %v %v %v %v", i, e.Op, e.Before, e.After, e.Key, e.Changed,
				want.before, want.after, want.key, want.changed)
		}
	}
	if ev[0].After.Columns() != ev[1].After.Columns() || ev[1].Before.Columns() != ev[1].After.Columns() || ev[0].Key.Columns() != ev[3].Key.Columns() {
		t.Error("rows of one relation do not share its Columns")
	}
}

// TestRelationWithDuplicateColumnIsAnError: rows are indexed by column
// name, so a Relation message naming a column twice (PostgreSQL sends
// none) is refused, not a panic.
func TestRelationWithDuplicateColumnIsAnError(t *testing.T) {
	m := bytes.Replace(msgRelation(1), []byte("body\x00"), []byte("id\x00"), 1)
	d := newDecoder("src", newTypeRegistry(), nil)
	if _, err := d.decode(context.Background(), m, nil); err == nil || !strings.Contains(err.Error(), `column "id" twice`) {
		t.Fatalf("decode: %v, want an error naming the column", err)
	}
}

// FuzzDecode: no input makes the decoder panic.
func FuzzDecode(f *testing.F) {
	for _, m := range [][]byte{msgBegin(1, 1), msgRelation(1), msgInsert(1, "1", "x"), msgUpdate(1, "1", "<toast>"), msgCommit(1), {'T'}, {'D', 0, 0, 0, 1, 'K'}} {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := newDecoder("src", newTypeRegistry(), nil)
		ctx := context.Background()
		d.decode(ctx, msgBegin(1, 1), nil)
		d.decode(ctx, msgRelation(1), nil)
		d.decode(ctx, data, nil)
	})
}

// TestParseISOTimeTakesTheCommonForms: the fast path reads what
// PostgreSQL writes for four-digit years, so time.Parse stays the
// exception; FuzzISOTimeMatchesTimeParse checks it reads them right.
func TestParseISOTimeTakesTheCommonForms(t *testing.T) {
	for _, tc := range []struct {
		s    string
		k    kind
		want time.Time
	}{
		{"2026-02-28", kDate, time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)},
		{"2024-02-29 23:59:59", kTimestamp, time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)},
		{"2026-11-24 05:12:03.5", kTimestamp, time.Date(2026, 11, 24, 5, 12, 3, 500_000_000, time.UTC)},
		{"2026-11-24 05:12:03.123456+00", kTimestamptz, time.Date(2026, 11, 24, 5, 12, 3, 123_456_000, time.UTC)},
		{"2026-11-24 05:12:03-08", kTimestamptz, time.Date(2026, 11, 24, 13, 12, 3, 0, time.UTC)},
		{"2026-03-04 05:06:07+05:30", kTimestamptz, time.Date(2026, 3, 3, 23, 36, 7, 0, time.UTC)},
		{"1900-01-01 00:00:00+00:19:32", kTimestamptz, time.Date(1899, 12, 31, 23, 40, 28, 0, time.UTC)},
	} {
		got, ok := parseISOTime(tc.s, tc.k)
		if !ok || got != tc.want {
			t.Errorf("parseISOTime(%q) = %v, %v; want %v", tc.s, got, ok, tc.want)
		}
	}
	for _, s := range []string{"2026-02-29", "2026-13-01", "12026-01-01", "2026-01-01 24:00:00", "2026-01-01 00:00:00+00 BC", "infinity"} {
		if _, ok := parseISOTime(s, kTimestamptz); ok {
			t.Errorf("parseISOTime(%q) took it", s)
		}
	}
}

// FuzzISOTimeMatchesTimeParse: whatever the fast path takes, time.Parse
// with the reference layouts reads as the same instant, in UTC.
func FuzzISOTimeMatchesTimeParse(f *testing.F) {
	for _, s := range []string{"2026-02-28", "2026-11-24 05:12:03.123456+00", "2026-03-04 05:06:07+05:30", "1900-01-01 00:00:00+00:19:32", "2026-11-24 05:12:03.1234567891"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, k := range []kind{kDate, kTimestamp, kTimestamptz} {
			fast, ok := parseISOTime(s, k)
			if !ok {
				continue
			}
			ref, ok := parseTimeLayouts(s, k)
			if !ok || fast != ref {
				t.Fatalf("kind %d, %q: fast path %v, time.Parse %v (ok %v)", k, s, fast, ref, ok)
			}
		}
	})
}

// FuzzParseArray: no array text makes the parser panic.
func FuzzParseArray(f *testing.F) {
	for _, s := range []string{"{}", "{1,2}", `{"a\"",NULL}`, "{{1},{2}}", "[1:2]={1,2}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parseArray(s, ',', func(e string) (any, error) { return e, nil })
	})
}

// FuzzFastParseMatchesPglogrepl: the allocation-free parse of row changes
// reads every message exactly as pglogrepl does.
func FuzzFastParseMatchesPglogrepl(f *testing.F) {
	for _, m := range [][]byte{msgInsert(1, "1", "x"), msgUpdate(1, "1", "<toast>"), msgInsert(2, "<null>", ""),
		append(msgTuple(append(binary.BigEndian.AppendUint32([]byte{'U'}, 1), 'O'), "1", "old"), msgTuple([]byte{'N'}, "2", "new")...),
		msgTuple(append(binary.BigEndian.AppendUint32([]byte{'D'}, 1), 'K'), "1", "<null>")} {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := newDecoder("src", newTypeRegistry(), nil)
		fast, ok := d.fastParse(data)
		if !ok {
			return
		}
		slow, err := parse(data)
		if err != nil {
			t.Fatalf("fast parse accepted what pglogrepl rejects: %v", err)
		}
		norm := func(td *pglogrepl.TupleData) [][2]any {
			if td == nil {
				return nil
			}
			var out [][2]any
			for _, c := range td.Columns {
				out = append(out, [2]any{c.DataType, string(c.Data)})
			}
			return out
		}
		switch m := fast.(type) {
		case *pglogrepl.InsertMessage:
			s := slow.(*pglogrepl.InsertMessage)
			if m.RelationID != s.RelationID || !reflect.DeepEqual(norm(m.Tuple), norm(s.Tuple)) {
				t.Fatalf("insert differs: %v vs %v", norm(m.Tuple), norm(s.Tuple))
			}
		case *pglogrepl.UpdateMessage:
			s := slow.(*pglogrepl.UpdateMessage)
			if m.RelationID != s.RelationID || m.OldTupleType != s.OldTupleType ||
				!reflect.DeepEqual(norm(m.OldTuple), norm(s.OldTuple)) || !reflect.DeepEqual(norm(m.NewTuple), norm(s.NewTuple)) {
				t.Fatalf("update differs")
			}
		case *pglogrepl.DeleteMessage:
			s := slow.(*pglogrepl.DeleteMessage)
			if m.RelationID != s.RelationID || m.OldTupleType != s.OldTupleType || !reflect.DeepEqual(norm(m.OldTuple), norm(s.OldTuple)) {
				t.Fatalf("delete differs")
			}
		}
	})
}
