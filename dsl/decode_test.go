package dsl

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/eventtest"
)

// TestEveryAttributeDecoded loads a file that sets every attribute to a
// value other than its default and checks each value landed in Config.
func TestEveryAttributeDecoded(t *testing.T) {
	testEnv(t)
	cfg, _, diags := LoadFile("testdata/valid/every_attribute.hcl", nil)
	if len(diags) > 0 {
		t.Fatal(diags.Error())
	}
	p := cfg.Pipeline
	if p.Name != "every-attribute" || p.State != "/var/lib/sluice/every.db" || p.OnError != "dead_letter" || p.MaskKey.Reveal() != "k3y-from-file" {
		t.Errorf("pipeline = %+v (mask key %q)", p, p.MaskKey.Reveal())
	}
	if len(cfg.Variables) != 2 || cfg.Variables[0].Default != "127.0.0.1:9092" || cfg.Variables[1].Default != "50" {
		t.Errorf("variables = %+v %+v", cfg.Variables[0], cfg.Variables[1])
	}
	for _, s := range cfg.Sinks {
		if s.Linger != time.Second {
			t.Errorf("sink %s: linger %v, want 1s", s.Name, s.Linger)
		}
	}

	pg := cfg.Sources[0].Postgres
	pg.Ranges = nil
	wantPG := &PostgresSource{DSN: "postgres://sluice:s3cret@127.0.0.1:5432/app", Tables: []string{"public.users", "shop.*"},
		Slot: "every_slot", Publication: "every_pub", Snapshot: "never", Exclude: []string{"public.users.password"}, Heartbeat: 2 * time.Second, OnSlotLost: "resnapshot", MaxRowsPerSecond: 5000, SnapshotWorkers: 4}
	eq(t, "postgres source", pg, wantPG)
	k := cfg.Sources[1].Kafka
	k.Ranges, k.TLS.Ranges, k.SASL.Ranges = nil, nil, nil
	eq(t, "kafka source", k, &KafkaSource{Brokers: []string{"127.0.0.1:9092", "127.0.0.1:9093"}, Topics: []string{"app.public.users"}, Group: "every-group", Format: "native",
		TLS:  &TLS{CAFile: filepath.Join("testdata", "valid", "certs", "ca.pem"), CertFile: "/etc/sluice/client.pem", KeyFile: "/etc/sluice/client.key", ServerName: "kafka.internal", InsecureSkipVerify: true},
		SASL: &KafkaSASL{Mechanism: "aws-msk-iam", Username: "AKIAEXAMPLE", Password: "s3cret", SessionToken: "token"}})
	f := cfg.Sources[2].File
	f.Ranges = nil
	// a path the pipeline reads is relative to the pipeline file
	eq(t, "file source", f, &FileSource{Path: "testdata/valid/users.jsonl", Follow: true})

	clean := cfg.Transforms[0]
	eq(t, "from", refNames(clean.From), []string{"source.pg", "source.events"})
	eq(t, "tables", clean.Tables, []string{"public.users"})
	if clean.Where == nil || clean.Where.Source != "op != 'delete' && after.email != nil" {
		t.Errorf("where = %+v", clean.Where)
	}
	if len(clean.Set) != 2 || clean.Set[0].Column != "domain" || clean.Set[1].Column != "full name" || clean.Set[1].Expr.Source != "after.first + ' ' + after.last" {
		t.Errorf("set = %+v", clean.Set)
	}
	eq(t, "mask", clean.Mask, []MaskColumn{{"email", "hash"}, {"phone", "partial"}, {"ssn", "redact"}, {"note", "null"}})
	eq(t, "exclude", clean.Exclude, []string{"password"})
	eq(t, "rename", clean.Rename, []RenameColumn{{"domain", "email_domain"}})
	eq(t, "select", cfg.Transforms[1].Select, []string{"id", "email"})
	eq(t, "narrow from", refNames(cfg.Transforms[1].From), []string{"transform.clean", "source.sample"})

	sinks := map[string]*Sink{}
	for _, s := range cfg.Sinks {
		sinks[s.Name] = s
	}
	my := sinks["replica"].MySQL
	my.Ranges = nil
	eq(t, "mysql sink", my, &TableSink{DSN: "root:s3cret@tcp(127.0.0.1:3306)/app", Table: "users_replica", Key: []string{"id"}, Mode: "update",
		Columns: []string{"email"}, Delete: "soft", AutoCreate: true, BatchSize: 50, SchemaChanges: "fail", Truncate: "skip", Enums: "varchar", MaxRowsPerSecond: 2000})
	pgs := sinks["copy"].Postgres
	pgs.Ranges = nil
	eq(t, "postgres sink", pgs, &TableSink{DSN: "postgres://127.0.0.1/copy", Table: "users_copy", Key: []string{"id", "email"}, Mode: "update",
		Columns: []string{"email", "id"}, Delete: "skip", AutoCreate: true, BatchSize: 10, SchemaChanges: "drop_columns", Truncate: "fail", MaxRowsPerSecond: 100})
	ks := sinks["out"].Kafka
	if o := ks.Outbox; o == nil || o.Topic.Source != "'outbox.' + row.kind" || o.Key.Source != "row.aggregate_id" || o.Value.Source != "row.payload" ||
		len(o.Headers) != 1 || o.Headers[0].Column != "id" || o.Headers[0].Expr.Source != "string(row.id)" {
		t.Errorf("kafka sink outbox: %+v", o)
	}
	ks.Ranges, ks.SASL.Ranges, ks.Outbox = nil, nil, nil
	eq(t, "kafka sink", ks, &KafkaSink{Brokers: []string{"127.0.0.1:9092"}, Topic: "cdc.{table}", Format: "native", Schemas: true, Key: []string{"id"},
		Tombstones: true, ExactlyOnce: true, Partitions: 6, ReplicationFactor: 3, ProducerLinger: 50 * time.Millisecond, BatchBytes: 2097152, SASL: &KafkaSASL{Mechanism: "scram-sha-512", Username: "sluice", Password: "pw"},
		TransactionsTopic: "every-attribute.transaction"})
	tl := sinks["txlog"].Kafka
	eq(t, "kafka sink resolved and transactions", []any{tl.Resolved, tl.Transactions, tl.TransactionsTopic}, []any{10 * time.Second, true, "cdc.transactions"})
	wh := sinks["hook"].Webhook
	wh.Ranges = nil
	eq(t, "webhook sink", wh, &WebhookSink{URL: "https://hooks.example.com/users", Secret: "whsec", Headers: map[string]Secret{"Authorization": "Bearer tok", "X-Team": "data"},
		Batch: 25, MaxBytes: 65536, Timeout: 90 * time.Second, RetryMax: 3, RetryBackoff: 250 * time.Millisecond, Format: "debezium",
		Resolved: 30 * time.Second, Transactions: true})
	fs := sinks["audit"].File
	fs.Ranges = nil
	eq(t, "file sink", fs, &FileSink{Path: "audit.jsonl", Format: "debezium", Resolved: time.Minute, Transactions: true})

	tc := cfg.Tests[0]
	in := tc.Inputs[0].Event
	eq(t, "input", in, change.Event{Op: change.Update, Schema: "public", Table: "users", Key: change.RowOf(map[string]any{"id": int64(1)}),
		Before: change.RowOf(map[string]any{"id": int64(1), "email": "old@example.com", "score": 1.5}),
		After:  change.RowOf(map[string]any{"id": int64(1), "email": "new@example.com", "score": int64(2), "tags": []any{"a", "b"}, "meta": map[string]any{"vip": true}, "gone": nil})})
	ex := tc.Expects[0]
	eq(t, "expect", ex.Sink, "replica")
	eq(t, "expect event", ex.Event, change.Event{Op: change.Update, Key: change.RowOf(map[string]any{"id": int64(1)}), Before: change.RowOf(map[string]any{"id": int64(1)}), After: change.RowOf(map[string]any{"id": int64(1), "email": "new@example.com"})})
	et := tc.ExpectTables[0]
	eq(t, "expect_table", []any{et.Sink, et.Table, et.Rows}, []any{"copy", "users_copy", []change.Row{change.RowOf(map[string]any{"id": int64(1), "email": "new@example.com"})}})
}

// TestEveryAttributeWritten guards the test above: the file must write
// every attribute of every block spec, so no attribute goes unchecked.
func TestEveryAttributeWritten(t *testing.T) {
	testEnv(t)
	cfg, _, diags := LoadFile("testdata/valid/every_attribute.hcl", nil)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	written := map[string]map[string]bool{}
	note := func(title string, ranges map[string]hcl.Range) {
		if written[title] == nil {
			written[title] = map[string]bool{}
		}
		for name := range ranges {
			written[title][name] = true
		}
	}
	note(`transform`, cfg.Transforms[0].Ranges)
	note(`transform`, cfg.Transforms[1].Ranges)
	for _, s := range cfg.Sources {
		switch {
		case s.Postgres != nil:
			note(`source "postgres"`, s.Postgres.Ranges)
		case s.Kafka != nil:
			note(`source "kafka"`, s.Kafka.Ranges)
			if s.Kafka.TLS != nil && s.Kafka.SASL != nil {
				note("tls", s.Kafka.TLS.Ranges)
				note("sasl", s.Kafka.SASL.Ranges)
			}
		case s.File != nil:
			note(`source "file"`, s.File.Ranges)
		}
	}
	for _, s := range cfg.Sinks {
		switch {
		case s.MySQL != nil:
			note(`sink "mysql"`, s.MySQL.Ranges)
		case s.Postgres != nil:
			note(`sink "postgres"`, s.Postgres.Ranges)
		case s.Kafka != nil:
			note(`sink "kafka"`, s.Kafka.Ranges)
			if s.Kafka.Outbox != nil {
				note("outbox", s.Kafka.Outbox.Ranges)
			}
		case s.Webhook != nil:
			note(`sink "webhook"`, s.Webhook.Ranges)
		case s.File != nil:
			note(`sink "file"`, s.File.Ranges)
		}
	}
	for _, spec := range append(append([]*blockSpec{transformSpec, tlsSpec, kafkaSASLSpec, kafkaOutboxSpec}, sourceSpecs...), sinkSpecs...) {
		for _, a := range spec.Attrs {
			if !written[spec.Title()][a.Name] {
				t.Errorf("every_attribute.hcl does not set %s.%s", spec.Title(), a.Name)
			}
		}
	}
}

func refNames(refs []Ref) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.String()
	}
	return out
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	got, want = plain(got), plain(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}

// plain replaces events and rows in v by their plain forms (rows as
// maps), which compare by content and print readably.
func plain(v any) any {
	switch v := v.(type) {
	case change.Event:
		return eventtest.Plain(v)
	case change.Row:
		return v.Map()
	case []change.Row:
		return eventtest.Maps(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = plain(x)
		}
		return out
	}
	return v
}

// TestDefaults loads the smallest pipeline and checks every documented default.
func TestDefaults(t *testing.T) {
	t.Setenv("SLUICE_MASK_KEY", "from-env")
	src := `pipeline "Users To-MySQL" {}
source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}
source "kafka" "k" {
  brokers = ["b:9092"]
  topics  = ["t"]
}
source "file" "f" { path = "x.jsonl" }
sink "mysql" "m" {
  from = [source.app, source.k, source.f]
  dsn  = "root@tcp(127.0.0.1:3306)/app"
}
sink "kafka" "k" {
  from    = source.app
  brokers = ["b:9092"]
}
sink "webhook" "w" {
  from = source.app
  url  = "https://example.com"
}
sink "file" "f" {
  from = source.app
  path = "-"
}
`
	cfg, _, diags := Load("defaults.hcl", []byte(src), nil)
	if len(diags) > 0 {
		t.Fatal(diags.Error())
	}
	eq(t, "state", cfg.Pipeline.State, ".sluice/Users To-MySQL.db")
	eq(t, "on_error", cfg.Pipeline.OnError, "retry")
	eq(t, "mask_key", cfg.Pipeline.MaskKey.Reveal(), "from-env")
	pg := cfg.Sources[0].Postgres
	eq(t, "postgres defaults", []any{pg.Slot, pg.Publication, pg.Snapshot, pg.Heartbeat}, []any{"sluice_users_to_mysql", "sluice_users_to_mysql", "initial", 10 * time.Second})
	eq(t, "kafka source defaults", []any{cfg.Sources[1].Kafka.Group, cfg.Sources[1].Kafka.Format}, []any{"sluice_users_to_mysql", "debezium"})
	eq(t, "file source follow", cfg.Sources[2].File.Follow, false)
	m := cfg.Sinks[0].MySQL
	eq(t, "table sink defaults", []any{m.Mode, m.Delete, m.BatchSize, m.SchemaChanges, m.AutoCreate, m.Table, m.Key}, []any{"upsert", "hard", 1000, "add_columns", false, "", []string(nil)})
	k := cfg.Sinks[1].Kafka
	eq(t, "kafka sink defaults", []any{k.Topic, k.Format, k.Partitions, k.ReplicationFactor, k.Tombstones, k.ExactlyOnce, k.Schemas, k.Resolved, k.Transactions, k.TransactionsTopic},
		[]any{"Users To-MySQL.{schema}.{table}", "debezium", 1, 1, false, false, false, time.Duration(0), false, "Users To-MySQL.transaction"})
	w := cfg.Sinks[2].Webhook
	eq(t, "webhook defaults", []any{w.Batch, w.Timeout, w.RetryMax, w.RetryBackoff, w.Format, w.Resolved, w.Transactions}, []any{100, 5 * time.Second, 8, 500 * time.Millisecond, "native", time.Duration(0), false})
	f := cfg.Sinks[3].File
	eq(t, "file sink defaults", []any{f.Format, f.Resolved, f.Transactions}, []any{"native", time.Duration(0), false})
}

// TestSpecFieldsExist checks that every attribute decodes into a field of
// the right type, so the reflective decoder never drops a value.
func TestSpecFieldsExist(t *testing.T) {
	targets := map[string]any{
		"pipeline": &Pipeline{}, "variable": &struct{ Default any }{},
		`source "postgres"`: &PostgresSource{}, `source "kafka"`: &KafkaSource{}, `source "file"`: &FileSource{},
		"transform": &Transform{}, `sink "mysql"`: &TableSink{}, `sink "postgres"`: &TableSink{}, `sink "kafka"`: &KafkaSink{},
		`sink "webhook"`: &WebhookSink{}, `sink "file"`: &FileSink{}, "tls": &TLS{}, "sasl": &KafkaSASL{}, "outbox": &KafkaOutbox{},
		"input": &eventFields{}, "expect": &eventFields{}, "expect_table": &struct {
			Rows  []change.Row
			Table string
		}{},
	}
	for _, spec := range topSpecs() {
		if spec == testSpec {
			continue
		}
		target, ok := targets[spec.Title()]
		if !ok {
			t.Errorf("no target struct for %s", spec.Title())
			continue
		}
		rv := reflect.ValueOf(target).Elem()
		for _, a := range spec.Attrs {
			if a.Type == tRetry {
				continue
			}
			f, ok := rv.Type().FieldByName(a.Field)
			if a.Type == tRefs || (!ok && strings.HasPrefix(spec.Title(), "sink ")) {
				f, ok = reflect.TypeOf(Sink{}).FieldByName(a.Field) // every sink's own
			}
			if !ok {
				t.Errorf("%s.%s decodes into missing field %q", spec.Title(), a.Name, a.Field)
				continue
			}
			if a.Default != nil && !reflect.TypeOf(a.Default).ConvertibleTo(f.Type) {
				t.Errorf("%s.%s: default %T does not fit field %s", spec.Title(), a.Name, a.Default, f.Type)
			}
		}
	}
}
