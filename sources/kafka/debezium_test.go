package kafka

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fixture is one Kafka record of a Debezium topic: key and value as the
// JSON converter writes them (null for a null key or value).
type fixture struct {
	Key   json.RawMessage `json:"key"`
	Value json.RawMessage `json:"value"`
}

func (f fixture) bytes() (key, value []byte) {
	if s := string(f.Key); s != "" && s != "null" {
		key = f.Key
	}
	if s := string(f.Value); s != "" && s != "null" {
		value = f.Value
	}
	return key, value
}

// TestDecodeDebeziumGolden decodes Debezium records shaped like the
// PostgreSQL connector's documented examples (create, update with
// DEFAULT and FULL replica identity, delete, snapshot read, truncate,
// message, tombstones; with and without the schema/payload wrapper) and
// compares each event, in sluice's native format, with its golden file.
func TestDecodeDebeziumGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/debezium/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var f fixture
			if err := json.Unmarshal(raw, &f); err != nil {
				t.Fatal(err)
			}
			e, row, err := DecodeDebezium(f.bytes())
			if err != nil {
				t.Fatal(err)
			}
			got := "no row\n"
			if row {
				got = string(format.Native{}.Append(nil, &e)) + "\n" + typesOf(e.After) + "\n"
			}
			golden := strings.TrimSuffix(file, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Fatalf("decoded\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// typesOf lists the Go types of a row's values, so the goldens show
// which semantic conversions happened.
func typesOf(r change.Row) string {
	var parts []string
	for _, c := range r.Names() {
		typ := "nil"
		if r.Get(c) != nil {
			typ = reflect.TypeOf(r.Get(c)).String()
		}
		parts = append(parts, c+":"+typ)
	}
	return strings.Join(parts, " ")
}

// TestDebeziumRoundTrip encodes events with format.Debezium, as the Kafka
// sink writes them, and checks the source decodes the same change.
func TestDebeziumRoundTrip(t *testing.T) {
	commit := time.Date(2026, 1, 2, 3, 4, 5, 123000000, time.UTC)
	tx := change.Tx{ID: 991, CommitTime: commit}
	key := change.RowOf(map[string]any{"id": int64(7)})
	full := change.RowOf(map[string]any{"id": int64(7), "name": "Ben", "total": change.Numeric("19.90"), "tags": []any{"a", "b"}})
	for _, e := range []change.Event{
		{Op: change.Insert, Schema: "public", Table: "users", Key: key, After: full, Tx: tx},
		{Op: change.Snapshot, Schema: "public", Table: "users", Key: key, After: full, Tx: tx},
		{Op: change.Update, Schema: "public", Table: "users", Key: key, Before: change.RowOf(map[string]any{"id": int64(7), "name": "Benjamin", "total": change.Numeric("19.90"), "tags": []any{"a", "b"}}), After: full, Tx: tx},
		{Op: change.Delete, Schema: "public", Table: "users", Key: key, Before: key, Tx: tx},
	} {
		t.Run(e.Op.String(), func(t *testing.T) {
			e.Position = change.Position{Source: "app", Offset: 4242}
			value := format.Debezium{}.Append(nil, &e)
			got, row, err := DecodeDebezium([]byte(`{"id":7}`), value)
			if err != nil || !row {
				t.Fatalf("decode %s: row %v, %v", value, row, err)
			}
			if got.Op != e.Op || got.Schema != e.Schema || got.Table != e.Table || got.Tx != e.Tx ||
				!reflect.DeepEqual(got.Key.Map(), e.Key.Map()) || !reflect.DeepEqual(got.Before.Map(), e.Before.Map()) || !reflect.DeepEqual(got.After.Map(), e.After.Map()) {
				t.Fatalf("round trip of %s\n got %+v\nwant %+v", value, got, e)
			}
		})
	}
}

func TestDecodeDebeziumErrors(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"not json", `{"op":`, "not JSON"},
		{"not an object", `[1,2]`, "want a JSON object"},
		{"unknown op", `{"op":"x","source":{"table":"t"},"after":{"id":1}}`, `field "op" is "x"`},
		{"native event", `{"op":"insert","table":"t","after":{"id":1}}`, `use format = "native"`},
		{"no table", `{"op":"c","source":{"schema":"public"},"after":{"id":1}}`, `"source.table" is missing`},
		{"insert without after", `{"op":"c","source":{"table":"t"}}`, `"after" is missing`},
		{"bad decimal", `{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"n","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}}]}]},"payload":{"op":"c","source":{"table":"t"},"after":{"n":"%%%"}}}`, `column "n"`},
		{"huge scale", `{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"n","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"999999999"}}]}]},"payload":{"op":"c","source":{"table":"t"},"after":{"n":"AQ=="}}}`, "scale 999999999 is outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := DecodeDebezium(nil, []byte(tc.value))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// FuzzDecodeDebezium checks that no record makes the decoder panic.
func FuzzDecodeDebezium(f *testing.F) {
	files, _ := filepath.Glob("testdata/debezium/*.json")
	for _, file := range files {
		raw, _ := os.ReadFile(file)
		var fx fixture
		if json.Unmarshal(raw, &fx) == nil {
			k, v := fx.bytes()
			f.Add(k, v)
		}
	}
	f.Fuzz(func(t *testing.T, key, value []byte) {
		_, _, _ = DecodeDebezium(key, value)
	})
}
