package nats

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// TestFromHCL builds the sink from a pipeline file, so the attributes and
// defaults dsl decodes (from the spec this package registers) are the
// ones the sink uses.
func TestFromHCL(t *testing.T) {
	cfg, _, diags := dsl.Load("events.hcl", []byte(`pipeline "shop" {}
source "file" "in" { path = "in.jsonl" }
sink "nats" "events" {
  from     = source.in
  password = "hunter2"
  user     = "bob"
  max_age  = "24h"
}
sink "nats" "audit" {
  from             = source.in
  url              = "nats://a:4222,nats://b:4222"
  subject          = "audit.{table}"
  format           = "native"
  stream           = "AUDIT"
  create_stream    = false
  subjects         = ["audit.>"]
  retention        = "workqueue"
  replicas         = 3
  duplicate_window = "10m"
  token            = "s3cret"
}
`), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	s, err := New(engine.Build{Pipeline: engine.Pipeline{Name: "shop"}, Logger: slog.New(slog.DiscardHandler)}, cfg.Sinks[0])
	if err != nil {
		t.Fatal(err)
	}
	c := s.(*Sink).cfg
	if c.URL != DefaultURL || c.Subject != "shop.{schema}.{table}" || c.Format != "debezium" || c.Stream != "sluice_shop" || !c.CreateStream ||
		strings.Join(c.Subjects, ",") != "shop.*.*" || c.Retention != "limits" || c.MaxAge != 24*time.Hour || c.Replicas != 1 ||
		c.DuplicateWindow != 2*time.Minute || c.User != "bob" || c.Password.Reveal() != "hunter2" || s.(*Sink).owner != "shop/events" {
		t.Fatalf("defaults: %+v", c)
	}
	if strings.Contains(fmt.Sprintf("%v %+v", c, c), "hunter2") {
		t.Fatal("the password shows in the printed config")
	}
	s, err = New(engine.Build{Pipeline: engine.Pipeline{Name: "shop", Instance: "b"}}, cfg.Sinks[1])
	if err != nil {
		t.Fatal(err)
	}
	c = s.(*Sink).cfg
	if c.URL != "nats://a:4222,nats://b:4222" || c.Subject != "audit.{table}" || c.Format != "native" || c.Stream != "AUDIT" || c.CreateStream ||
		strings.Join(c.Subjects, ",") != "audit.>" || c.Retention != "workqueue" || c.Replicas != 3 || c.DuplicateWindow != 10*time.Minute ||
		c.Token.Reveal() != "s3cret" || s.(*Sink).owner != "shop/audit.b" {
		t.Fatalf("attributes: %+v", c)
	}
}

// TestDiagnostics: what the spec's checks and enums refuse is reported
// at load time, at the attribute.
func TestDiagnostics(t *testing.T) {
	cases := []struct{ attr, want string }{
		{`subject = "app.{schema}.*"`, "events.hcl:4,13"},
		{`subject = "app.{db}.{table}"`, "only {schema} and {table}"},
		{`subject = "app..{table}"`, "empty token"},
		{`stream = "a.b"`, "is not a stream name"},
		{`subjects = ["a.>.b"]`, "is not a subject filter"},
		{`retention = "forever"`, "retention"},
		{`format = "avro"`, "format"},
		{`url = "http://host:4222"`, "scheme"},
		{`replicas = 0`, "at least 1"},
		{`passwrd = "x"`, "password"},
	}
	for _, c := range cases {
		t.Run(c.attr, func(t *testing.T) {
			_, _, diags := dsl.Load("events.hcl", []byte(`pipeline "shop" {}
source "file" "in" { path = "in.jsonl" }
sink "nats" "events" {
  `+c.attr+`
  from = source.in
}
`), nil)
			if !diags.HasErrors() {
				t.Fatalf("%s loads without error", c.attr)
			}
			if !strings.Contains(diags.Error(), c.want) {
				t.Fatalf("diagnostics %q do not say %q", diags.Error(), c.want)
			}
		})
	}
}

func TestConfigChecks(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"window longer than max_age", Config{MaxAge: time.Minute, DuplicateWindow: time.Hour}, "duplicate_window"},
		{"two ways to authenticate", Config{User: "u", Token: "t"}, "one way to authenticate"},
		{"password without user", Config{Password: "p"}, "without user"},
		{"schemas with native", Config{Format: "native", Schemas: true}, "schemas"},
		{"subjects that miss the template", Config{Subject: "a.{table}", Subjects: []string{"b.>"}}, `add "a.*" to subjects`},
		{"too many replicas", Config{Replicas: 7}, "replicas"},
		{"unparsable url with a password", Config{URL: "nats://u:pw@[::1"}, "not a NATS server URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := newSink(c.cfg, "p", "events", nil)
			if err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("newSink = %v, want a permanent error saying %q", err, c.want)
			}
			if strings.Contains(err.Error(), "pw@") || strings.Contains(err.Error(), ":pw") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
	if _, err := newSink(Config{}, "my pipeline.v2", "events", nil); err != nil {
		t.Fatalf("defaults of a pipeline name with a space and a dot: %v", err)
	}
	if got := DefaultStream("my pipeline.v2"); got != "sluice_my_pipeline_v2" {
		t.Errorf("DefaultStream = %q", got)
	}
	if got := DefaultSubject("my pipeline.v2"); got != "my_pipeline_v2.{schema}.{table}" {
		t.Errorf("DefaultSubject = %q", got)
	}
}

func TestWildcardsAndCovers(t *testing.T) {
	for tpl, want := range map[string]string{
		"app.{schema}.{table}": "app.*.*",
		"app.{schema}_{table}": "app.*",
		"app.events":           "app.events",
		"{table}":              "*",
	} {
		if got := Wildcards(tpl); got != want {
			t.Errorf("Wildcards(%q) = %q, want %q", tpl, got, want)
		}
	}
	cases := []struct {
		filter, subject string
		want            bool
	}{
		{"app.*.*", "app.*.*", true},
		{"app.>", "app.*.*", true},
		{">", "app", true},
		{"app.>", "app", false},
		{"app.*", "app.*.*", false},
		{"app.public.*", "app.*.*", false},
		{"app.*.users", "app.public.users", true},
		{"app.*.*", "app.public", false},
	}
	for _, c := range cases {
		if got := covers(c.filter, c.subject); got != c.want {
			t.Errorf("covers(%q, %q) = %t, want %t", c.filter, c.subject, got, c.want)
		}
	}
}

func TestSubjectOfATable(t *testing.T) {
	s, err := newSink(Config{Subject: "app.{schema}.{table}"}, "p", "events", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.subj = map[[2]string]*subj{}
	if got, err := s.subject(&change.Event{Schema: "public", Table: "users"}); err != nil || got != "app.public.users" {
		t.Fatalf("subject = %q, %v", got, err)
	}
	for _, table := range []string{"my.table", "my table", "a*", ""} {
		_, err := s.subject(&change.Event{Schema: "public", Table: table})
		if err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "public."+table) {
			t.Errorf("table %q: subject error %v, want a permanent one naming the table", table, err)
		}
	}
}

// TestRunningCheckpoint: the header encodes the checkpoint exactly as
// change.Checkpoint.MarshalJSON does, so any reader of checkpoints reads
// it.
func TestRunningCheckpoint(t *testing.T) {
	r := newRunning(nil)
	if r.String() != "[]" {
		t.Fatalf("empty: %s", r.String())
	}
	positions := []change.Position{
		{Source: "app", Offset: 10, Index: 1},
		{Source: "orders", Partition: "orders/10", Offset: 5},
		{Source: "orders", Partition: "orders/2", Offset: 7},
		{Source: "app", Offset: 9}, // behind: ignored
		{Source: "a<b>&\"c", Offset: 1},
		{Source: "app", Offset: 11, Index: 0},
	}
	cp := change.Checkpoint{}
	for _, p := range positions {
		r.advance(p)
		cp.Advance(p)
		want, _ := cp.MarshalJSON()
		if r.String() != string(want) {
			t.Fatalf("after %v: %s, want %s", p, r.String(), want)
		}
	}
	if !equalCheckpoints(newRunning(cp).cp, cp) {
		t.Fatal("newRunning does not keep the checkpoint")
	}
}

func TestMsgID(t *testing.T) {
	if got := MsgID(change.Position{Source: "app", Offset: 23803720, Index: 3}); got != "app@23803720.3" {
		t.Errorf("MsgID = %q", got)
	}
	if got := MsgID(change.Position{Source: "orders", Partition: "orders/2", Offset: 1500}); got != "orders/orders/2@1500.0" {
		t.Errorf("MsgID = %q", got)
	}
}

func TestLater(t *testing.T) {
	a := change.Checkpoint{{Source: "x"}: {Source: "x", Offset: 5}, {Source: "y"}: {Source: "y", Offset: 1}}
	b := change.Checkpoint{{Source: "x"}: {Source: "x", Offset: 3}, {Source: "z"}: {Source: "z", Offset: 2}}
	got := later(a, b)
	want := change.Checkpoint{{Source: "x"}: {Source: "x", Offset: 5}, {Source: "y"}: {Source: "y", Offset: 1}, {Source: "z"}: {Source: "z", Offset: 2}}
	if !equalCheckpoints(got, want) {
		t.Fatalf("later = %v, want %v", got, want)
	}
}

func TestRedactURLs(t *testing.T) {
	got := redactURLs("nats://bob:hunter2@a:4222, nats://tok3n@b:4222,c:4222")
	if strings.Contains(got, "hunter2") || strings.Contains(got, "tok3n") || !strings.Contains(got, "a:4222") || !strings.Contains(got, "c:4222") {
		t.Fatalf("redactURLs = %q", got)
	}
}
