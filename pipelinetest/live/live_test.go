package live

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

func TestScratchNames(t *testing.T) {
	s := NewSession(Options{})
	name := s.name(3, "k0_Replica-Sink")
	if !strings.HasPrefix(name, Prefix+s.run+"_3_k0_replica_sink") {
		t.Errorf("name = %q", name)
	}
	if runOf(name) != s.run {
		t.Errorf("runOf(%q) = %q, want %q", name, runOf(name), s.run)
	}
	long := s.name(12, "k1_"+strings.Repeat("x", 80))
	if len(long) != 63 || runOf(long) != s.run {
		t.Errorf("long name %q (%d bytes)", long, len(long))
	}
	for _, other := range []string{"sluice_checkpoints", "sluice_scratch_", "sluice_scratch_12_zz_1", "public"} {
		if runOf(other) != "" {
			t.Errorf("runOf(%q) = %q, want none", other, runOf(other))
		}
	}
	if lockKey("1_abcd") == lockKey("2_abcd") {
		t.Error("two sessions share a lock key")
	}
}

func TestInferTable(t *testing.T) {
	in := func(op change.Op, before, after, key change.Row) *input {
		e := change.Event{Op: op, Schema: "public", Table: "t", Before: before, After: after, Key: key}
		return &input{in: &dsl.TestInput{Event: e}, event: e}
	}
	cols, key := inferTable("public.t", []*input{
		in(change.Insert, change.Row{}, change.RowOf(map[string]any{"id": int64(1), "name": "a", "total": int64(80), "ok": true, "doc": map[string]any{"a": 1}, "gone": nil}), change.RowOf(map[string]any{"id": int64(1)})),
		in(change.Update, change.RowOf(map[string]any{"id": int64(1)}), change.RowOf(map[string]any{"id": int64(1), "total": 49.99, "mixed": "x"}), change.RowOf(map[string]any{"id": int64(1)})),
		in(change.Insert, change.Row{}, change.RowOf(map[string]any{"id": int64(2), "mixed": int64(3)}), change.RowOf(map[string]any{"id": int64(2)})),
	}, []string{"public.t.secret", "public.other.x"})
	want := []pgColumn{{name: "id", typ: "bigint"}, {name: "doc", typ: "jsonb"}, {name: "gone", typ: "text"}, {name: "mixed", typ: "text"},
		{name: "name", typ: "text"}, {name: "ok", typ: "boolean"}, {name: "secret", typ: "text"}, {name: "total", typ: "numeric"}}
	if !reflect.DeepEqual(cols, want) || !reflect.DeepEqual(key, []string{"id"}) {
		t.Errorf("inferTable = %v key %v\nwant %v key [id]", cols, key, want)
	}
	_, key = inferTable("public.t", []*input{in(change.Insert, change.Row{}, change.RowOf(map[string]any{"code": "a"}), change.Row{})}, nil)
	if key != nil {
		t.Errorf("no key given: key %v, want none (REPLICA IDENTITY FULL)", key)
	}
}

func TestStatement(t *testing.T) {
	tb := &pgTable{schema: "sluice_scratch_1_abcd_1_s0a_app", name: "users",
		columns: []pgColumn{{name: "id", typ: "bigint"}, {name: "name", typ: "text"}, {name: "tags", typ: "text[]"}, {name: "len", typ: "integer", generated: true}}}
	q := `"sluice_scratch_1_abcd_1_s0a_app"."users"`
	cases := []struct {
		name      string
		in, event change.Event
		stmt      string
		args      []any
		err       string
	}{
		{"insert; generated columns are the database's", change.Event{Op: change.Insert, After: change.RowOf(map[string]any{"id": int64(1), "name": "Ben", "len": int64(3)})}, change.Event{},
			"INSERT INTO " + q + ` ("id", "name") OVERRIDING SYSTEM VALUE VALUES ($1, $2)`, []any{"1", "Ben"}, ""},
		{"update located by before, moving the key", change.Event{Op: change.Update, Before: change.RowOf(map[string]any{"id": int64(1)}), After: change.RowOf(map[string]any{"id": int64(10), "name": nil})}, change.Event{},
			"UPDATE " + q + ` SET "id" = $1, "name" = $2 WHERE "id" IS NOT DISTINCT FROM $3`, []any{"10", nil, "1"}, ""},
		{"update leaves the columns before already has alone", change.Event{Op: change.Update, Before: change.RowOf(map[string]any{"id": int64(1)}), After: change.RowOf(map[string]any{"id": int64(1), "name": "B"})}, change.Event{},
			"UPDATE " + q + ` SET "name" = $1 WHERE "id" IS NOT DISTINCT FROM $2`, []any{"B", "1"}, ""},
		{"update without before: by the key", change.Event{Op: change.Update, After: change.RowOf(map[string]any{"id": int64(2), "tags": []any{"a", `b"c`}})}, change.Event{Key: change.RowOf(map[string]any{"id": int64(2)})},
			"UPDATE " + q + ` SET "id" = $1, "tags" = $2 WHERE "id" IS NOT DISTINCT FROM $3`, []any{"2", `{"a","b\"c"}`, "2"}, ""},
		{"delete by every column before gives", change.Event{Op: change.Delete, Before: change.RowOf(map[string]any{"id": int64(1), "name": "Ben"})}, change.Event{},
			"DELETE FROM " + q + ` WHERE "id" IS NOT DISTINCT FROM $1 AND "name" IS NOT DISTINCT FROM $2`, []any{"1", "Ben"}, ""},
		{"truncate", change.Event{Op: change.Truncate}, change.Event{}, "TRUNCATE " + q, nil, ""},
		{"a column the real table lacks", change.Event{Op: change.Insert, After: change.RowOf(map[string]any{"id": int64(1), "email": "x"})}, change.Event{}, "", nil, `column "email" is not a column of`},
		{"a delete with nothing to find the row by", change.Event{Op: change.Delete}, change.Event{}, "", nil, "gives no before"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stmt, args, err := tb.statement(&c.in, &c.event)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || stmt != c.stmt || !reflect.DeepEqual(args, c.args) {
				t.Errorf("statement = %q %#v, %v\nwant        %q %#v", stmt, args, err, c.stmt, c.args)
			}
		})
	}
}

// TestTargetValues: values read back from the targets are typed the way
// sluice's values are, so that a test's expected rows compare with them.
func TestTargetValues(t *testing.T) {
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pg := []struct {
		typ, text string
		want      any
	}{
		{"bigint", "42", int64(42)}, {"numeric(10,2)", "12.50", change.Numeric("12.50")}, {"double precision", "0.5", 0.5},
		{"boolean", "t", true}, {"jsonb", `{"a": 1}`, change.JSON(`{"a": 1}`)}, {"bytea", `\x6869`, []byte("hi")},
		{"timestamp with time zone", "2026-01-02 03:04:05+00", when}, {"text", "x", "x"}, {"uuid", "0b1c", "0b1c"},
	}
	for _, c := range pg {
		if got := pgValue(c.typ, c.text); !reflect.DeepEqual(got, c.want) {
			t.Errorf("pgValue(%s, %q) = %#v, want %#v", c.typ, c.text, got, c.want)
		}
	}
	my := []struct {
		col  mysqlColumn
		in   any
		want any
	}{
		{mysqlColumn{dataType: "tinyint", columnType: "tinyint(1)"}, []byte("1"), true},
		{mysqlColumn{dataType: "tinyint", columnType: "tinyint(1)"}, int64(0), false},
		{mysqlColumn{dataType: "tinyint", columnType: "tinyint(4)"}, []byte("1"), int64(1)},
		{mysqlColumn{dataType: "bigint", columnType: "bigint(20) unsigned"}, []byte("18446744073709551615"), change.Numeric("18446744073709551615")},
		{mysqlColumn{dataType: "decimal", columnType: "decimal(10,2)"}, []byte("80.00"), change.Numeric("80.00")},
		{mysqlColumn{dataType: "double", columnType: "double"}, []byte("0.1"), 0.1},
		{mysqlColumn{dataType: "longtext", columnType: "longtext", json: true}, []byte(`{"a":1}`), change.JSON(`{"a":1}`)},
		{mysqlColumn{dataType: "varbinary", columnType: "varbinary(10)"}, []byte{0, 1}, []byte{0, 1}},
		{mysqlColumn{dataType: "varchar", columnType: "varchar(20)"}, []byte("abc"), "abc"},
		{mysqlColumn{dataType: "datetime", columnType: "datetime(6)"}, when, when},
		{mysqlColumn{dataType: "varchar", columnType: "varchar(20)"}, nil, nil},
	}
	for _, c := range my {
		if got := mysqlValue(c.col, c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("mysqlValue(%s, %#v) = %#v, want %#v", c.col.columnType, c.in, got, c.want)
		}
	}
}

func TestWithSearchPath(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://u:p@h:5432/db?sslmode=disable": "postgres://u:p@h:5432/db?search_path=s&sslmode=disable",
		"host=h dbname=db":                         "host=h dbname=db search_path=s",
	} {
		if got := withSearchPath(dsn, "s"); got != want {
			t.Errorf("withSearchPath(%q) = %q, want %q", dsn, got, want)
		}
	}
}

// TestPlan: what runs live and what does not, with the reason.
func TestPlan(t *testing.T) {
	cfg := &dsl.Config{
		Sources: []*dsl.Source{{Type: "postgres", Name: "app", Postgres: &dsl.PostgresSource{}}, {Type: "kafka", Name: "topic", Kafka: &dsl.KafkaSource{}}},
		Sinks: []*dsl.Sink{{Type: "mysql", Name: "replica", MySQL: &dsl.TableSink{}}, {Type: "kafka", Name: "events", Kafka: &dsl.KafkaSink{}},
			{Type: "webhook", Name: "crm", Webhook: &dsl.WebhookSink{}}, {Type: "file", Name: "out", File: &dsl.FileSink{}}},
	}
	got := PlanFor(cfg).String()
	for _, want := range []string{
		"live: source.app (postgres: scratch copies", "sink.replica (mysql: writes into a scratch database", "sink.out (file: writes to a scratch file)",
		"; not live: source.topic (kafka: a scratch topic would need a broker", "sink.events (kafka: writing would publish to the real brokers",
		"sink.crm (webhook: posting would reach the real receiver",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
}
