package format

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/eventtest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var commit = time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)

// goldenEvents covers every op and every value type change.Row documents.
var goldenEvents = []struct {
	name string
	e    change.Event
}{
	{"insert with every type", change.Event{
		Op: change.Insert, Schema: "public", Table: "users",
		Key: change.RowOf(map[string]any{"id": int64(1)}),
		After: change.RowOf(map[string]any{
			"id": int64(1), "name": "Ben \"B\" <b@x>\n", "active": true, "score": 1.5,
			"total": change.Numeric("12345678901234567890.10"), "nan": change.Numeric("NaN"),
			"doc": change.JSON(`{"a":[1,2]}`), "blob": []byte{0, 1, 2, 255},
			"seen": time.Date(2026, 1, 2, 4, 4, 5, 0, time.FixedZone("CET", 3600)),
			"tags": []any{"a", int64(2), nil}, "meta": map[string]any{"z": int64(1), "a": "x"},
			"nothing": nil, "big": 1e21, "inf": math.Inf(1),
		}),
		Changed:  []string{"id", "name"},
		Tx:       change.Tx{ID: 123, CommitTime: commit},
		Position: change.Position{Source: "app", Offset: 23803720, Index: 2},
	}},
	{"update", change.Event{
		Op: change.Update, Schema: "public", Table: "users", Key: change.RowOf(map[string]any{"id": int64(1)}),
		Before:   change.RowOf(map[string]any{"id": int64(1), "email": "a@x"}),
		After:    change.RowOf(map[string]any{"id": int64(1), "email": "b@x"}),
		Changed:  []string{"email"},
		Tx:       change.Tx{ID: 124, CommitTime: commit},
		Position: change.Position{Source: "app", Offset: 23803800},
		Relation: &change.Relation{Schema: "public", Table: "users", Columns: []change.Column{
			{Name: "id", Type: "integer", Key: true, NotNull: true}, {Name: "email", Type: "character varying(200)"}, {Name: "created", Type: "timestamp with time zone"},
		}},
	}},
	{"delete with key only", change.Event{
		Op: change.Delete, Schema: "public", Table: "users", Key: change.RowOf(map[string]any{"id": int64(1)}),
		Tx: change.Tx{ID: 125}, Position: change.Position{Source: "app", Offset: 23803900},
	}},
	{"snapshot without schema or tx", change.Event{
		Op: change.Snapshot, Table: "pasta", After: change.RowOf(map[string]any{"name": "linguine"}),
		Changed: []string{"name"}, Position: change.Position{Source: "pg", Offset: 1},
	}},
	{"the last snapshot row", change.Event{
		Op: change.Snapshot, Table: "pasta", After: change.RowOf(map[string]any{"name": "penne"}),
		Changed: []string{"name"}, Position: change.Position{Source: "pg", Offset: 1, Index: 1}, SnapshotLast: true,
	}},
	{"truncate", change.Event{Op: change.Truncate, Schema: "public", Table: "pasta", Position: change.Position{Source: "pg", Offset: 7}}},
}

func TestGolden(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC) }
	for _, c := range []struct {
		golden string
		f      Format
	}{
		{"native", Native{}},
		{"debezium", Debezium{DB: "shop", Now: now}},
		{"debezium-schemas", Debezium{DB: "shop", Now: now, Schemas: true}},
	} {
		f := c.f
		t.Run(c.golden, func(t *testing.T) {
			var got bytes.Buffer
			for _, c := range goldenEvents {
				line := f.Append(nil, &c.e)
				if !json.Valid(line) {
					t.Errorf("%s: invalid JSON: %s", c.name, line)
				}
				got.WriteString("# " + c.name + "\n")
				got.Write(line)
				got.WriteByte('\n')
			}
			path := filepath.Join("testdata", c.golden+".golden")
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("output differs from %s (run with -update to accept):\n got:\n%s\nwant:\n%s", path, got.Bytes(), want)
			}
			// The same rows in another column order, with a column
			// the source did not send, encode to the same bytes.
			got.Reset()
			for _, c := range goldenEvents {
				e := c.e
				e.Key, e.Before, e.After = reshaped(e.Key), reshaped(e.Before), reshaped(e.After)
				got.WriteString("# " + c.name + "\n")
				got.Write(f.Append(nil, &e))
				got.WriteByte('\n')
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("rows in reverse column order with an unsent column: output differs from %s:\n got:\n%s\nwant:\n%s", path, got.Bytes(), want)
			}
		})
	}
}

// reshaped returns r with its columns in reverse name order and an
// unsent column "zz_unsent" second: the same row to every reader.
func reshaped(r change.Row) change.Row {
	if r.IsZero() {
		return r
	}
	var names []string
	var vals []any
	for k, v := range r.Sorted() {
		names = append([]string{k}, names...)
		vals = append([]any{v}, vals...)
	}
	at := min(1, len(names))
	names = slices.Insert(names, at, "zz_unsent")
	vals = slices.Insert(vals, at, change.Unsent)
	out := change.MakeRow(change.NewColumns(names...), vals)
	if !out.Equal(r) {
		panic(fmt.Sprintf("reshaped %v is %v", r, out))
	}
	return out
}

func TestMarksAreNeverEncoded(t *testing.T) {
	m := change.Event{Op: change.Mark, Position: change.Position{Source: "a", Offset: 1}, Boundary: true}
	for _, name := range Names {
		f, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if out := f.Append([]byte("x"), &m); string(out) != "x" {
			t.Errorf("%s encoded a mark: %q", name, out)
		}
	}
}

func TestLookupUnknown(t *testing.T) {
	_, err := Lookup("avro")
	if err == nil || !strings.Contains(err.Error(), `"native" or "debezium"`) {
		t.Fatalf("want an error naming the formats, got %v", err)
	}
}

func TestNativeRoundTrip(t *testing.T) {
	for _, c := range goldenEvents {
		t.Run(c.name, func(t *testing.T) {
			line := Native{}.Append(nil, &c.e)
			got, err := DecodeNative(line)
			if err != nil {
				t.Fatalf("decode %s: %v", line, err)
			}
			// What the format cannot carry: the stream, and Go types that
			// have one JSON spelling.
			again := Native{}.Append(nil, &got)
			if !bytes.Equal(again, line) {
				t.Errorf("re-encoding differs:\n got %s\nwant %s", again, line)
			}
			if got.Position.Offset != c.e.Position.Offset || got.Position.Index != c.e.Position.Index {
				t.Errorf("position %v, want %v", got.Position, c.e.Position)
			}
		})
	}
}

func TestDecodeNativeTypes(t *testing.T) {
	e, err := DecodeNative([]byte(`{"op":"insert","table":"t","after":{"i":9007199254740993,"n":12.50,"huge":123456789012345678901234567890,"o":{"x":1},"a":[1,"b"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"i": int64(9007199254740993), "n": change.Numeric("12.50"), "huge": change.Numeric("123456789012345678901234567890"),
		"o": map[string]any{"x": int64(1)}, "a": []any{int64(1), "b"}}
	if !reflect.DeepEqual(e.After.Map(), want) {
		t.Errorf("after = %#v\nwant %#v", e.After.Map(), want)
	}
	if !reflect.DeepEqual(e.Changed, []string{"a", "huge", "i", "n", "o"}) {
		t.Errorf("derived changed = %v", e.Changed)
	}
	u, err := DecodeNative([]byte(`{"op":"update","table":"t","before":{"id":1,"a":"x","b":2},"after":{"id":1,"a":"y","b":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(u.Changed, []string{"a"}) {
		t.Errorf("derived changed for update = %v, want [a]", u.Changed)
	}
}

func TestDecodeNativeErrors(t *testing.T) {
	for _, c := range []struct{ name, line, want string }{
		{"empty", ``, "empty line"},
		{"not an object", `[1]`, "want a JSON object"},
		{"syntax", `{"op":"insert",}`, "invalid JSON at byte"},
		{"unknown field", `{"op":"insert","table":"t","after":{},"afterr":{}}`, `unknown field "afterr"`},
		{"missing op", `{"table":"t"}`, `field "op" is missing`},
		{"bad op", `{"op":"upsert","table":"t"}`, `field "op": unknown op "upsert"`},
		{"mark op", `{"op":"mark","table":"t"}`, `unknown op "mark"`},
		{"op type", `{"op":1,"table":"t"}`, `field "op": want a string, got a number`},
		{"missing table", `{"op":"insert","after":{}}`, `field "table" is missing`},
		{"after not object", `{"op":"insert","table":"t","after":"x"}`, `field "after": want an object of columns, got a string`},
		{"insert without after", `{"op":"insert","table":"t"}`, `field "after" is missing`},
		{"delete without row", `{"op":"delete","table":"t"}`, `"before" and "key" are both missing`},
		{"changed type", `{"op":"insert","table":"t","after":{},"changed":"a"}`, `field "changed": want an array`},
		{"tx type", `{"op":"insert","table":"t","after":{},"tx":5}`, `field "tx": want an object`},
		{"tx id", `{"op":"insert","table":"t","after":{},"tx":{"id":-1}}`, `field "tx.id": want a non-negative integer`},
		{"tx unknown", `{"op":"insert","table":"t","after":{},"tx":{"xid":1}}`, `field "tx"`},
		{"commit_time", `{"op":"insert","table":"t","after":{},"tx":{"commit_time":"yesterday"}}`, `field "tx.commit_time": "yesterday" is not an RFC 3339 time`},
		{"position", `{"op":"insert","table":"t","after":{},"position":"0/xyz"}`, `field "position"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeNative([]byte(c.line))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func FuzzDecodeNative(f *testing.F) {
	for _, c := range goldenEvents {
		f.Add(Native{}.Append(nil, &c.e))
	}
	f.Add([]byte(`{"op":"delete","table":"t","key":{"id":1},"tx":{"id":1,"commit_time":"2026-01-02T03:04:05Z"}}`))
	f.Add([]byte(`{"op":"insert","table":"t\u00e9\n","after":{"a":[1,{"b":null}],"c":-0.5e3,"d":true,"e":"\ud83d\ude00"},"changed":[]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := DecodeNative(line)
		if fast, ok := fastNative(line); ok {
			// The fast path must accept only what the careful path
			// accepts, and read it the same.
			careful, cerr := decodeNativeCarefully(line)
			if cerr != nil {
				t.Fatalf("fast path accepted %q, careful path says %v", line, cerr)
			}
			if !reflect.DeepEqual(eventtest.Plain(fast), eventtest.Plain(careful)) {
				t.Fatalf("paths disagree on %q:\nfast    %#v\ncareful %#v", line, eventtest.Plain(fast), eventtest.Plain(careful))
			}
		}
		if err != nil {
			return
		}
		// Whatever decodes must encode to valid JSON that decodes again
		// to the same encoding.
		out := Native{}.Append(nil, &e)
		if !json.Valid(out) {
			t.Fatalf("encoding of decoded %q is invalid JSON: %s", line, out)
		}
		e2, err := DecodeNative(out)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", out, err)
		}
		if out2 := (Native{}).Append(nil, &e2); !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}

func BenchmarkNativeAppend(b *testing.B) {
	e := goldenEvents[1].e
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = Native{}.Append(buf[:0], &e)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkAppendEveryType encodes the 14 columns of the first golden
// event, JSON values among them, in each format.
func BenchmarkAppendEveryType(b *testing.B) {
	e := goldenEvents[0].e
	now := func() time.Time { return commit }
	for _, f := range []struct {
		name string
		f    Format
	}{{"native", Native{}}, {"debezium", Debezium{Now: now}}, {"debezium-schemas", Debezium{Now: now, Schemas: true}}} {
		b.Run(f.name, func(b *testing.B) {
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				buf = f.f.Append(buf[:0], &e)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

func TestIsJSONNumber(t *testing.T) {
	for s, want := range map[string]bool{"0": true, "-12.50": true, "1e5": true, "1E-5": true, "12.": false, "01": false, "": false, "-": false, "1e": false, "NaN": false, ".5": false, "1.5e+": false} {
		if got := isJSONNumber(s); got != want {
			t.Errorf("isJSONNumber(%q) = %v, want %v", s, got, want)
		}
	}
}

func BenchmarkDecodeNative(b *testing.B) {
	line := []byte(`{"op":"insert","schema":"public","table":"users","after":{"id":12345,"email":"user12345@example.com","password":"hunter12345","total":12345.50}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := DecodeNative(line); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDebeziumSchemasWrapTheSameEnvelope(t *testing.T) {
	now := func() time.Time { return commit }
	for _, c := range goldenEvents {
		plain := Debezium{Now: now}.Append(nil, &c.e)
		wrapped := Debezium{Now: now, Schemas: true}.Append(nil, &c.e)
		var env struct {
			Schema struct {
				Name   string `json:"name"`
				Fields []struct {
					Field  string `json:"field"`
					Fields []struct {
						Field string `json:"field"`
					} `json:"fields"`
				} `json:"fields"`
			} `json:"schema"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(wrapped, &env); err != nil {
			t.Fatalf("%s: %v: %s", c.name, err, wrapped)
		}
		if !bytes.Equal(env.Payload, plain) {
			t.Errorf("%s: payload differs from the plain envelope:\n%s\n%s", c.name, env.Payload, plain)
		}
		if want := c.e.Position.Source + "." + c.e.Schema + "." + c.e.Table + ".Envelope"; env.Schema.Name != want {
			t.Errorf("%s: schema name %q, want %q", c.name, env.Schema.Name, want)
		}
		// Every column of the row has a field in the after struct.
		fields := map[string]bool{}
		for _, f := range env.Schema.Fields[1].Fields {
			fields[f.Field] = true
		}
		for _, col := range c.e.Row().Names() {
			if !fields[col] {
				t.Errorf("%s: column %q has no schema field", c.name, col)
			}
		}
	}
}

// TestNativePartition: an event of a partition of its source (a parallel
// snapshot reader's, a Kafka partition's) names it before its position,
// so that the two identify the change; decoding accepts the field, on
// the one-pass path and the careful one, and leaves the stream to the
// reader, as for every position.
func TestNativePartition(t *testing.T) {
	e := change.Event{Op: change.Snapshot, Table: "t", After: change.RowOf(map[string]any{"id": int64(1)}),
		Position: change.Position{Partition: "#1", Offset: 10, Index: 3}}
	line := Native{}.Append(nil, &e)
	if !bytes.Contains(line, []byte(`"partition":"#1","position":"10.3"`)) {
		t.Fatalf("encoded %s, want the partition before the position", line)
	}
	want := change.Position{Offset: 10, Index: 3}
	if got, ok := fastNative(line); !ok || got.Position != want {
		t.Errorf("one-pass scanner: %+v, %v; want %+v", got.Position, ok, want)
	}
	if got, err := decodeNativeCarefully(line); err != nil || got.Position != want {
		t.Errorf("careful path: %+v, %v; want %+v", got.Position, err, want)
	}
}
