package postgres

import (
	"context"
	"reflect"
	"sort"
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

func TestSampleReadsRowsAndCreatesNothing(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE a (id int PRIMARY KEY, secret text); INSERT INTO a SELECT g, 's' FROM generate_series(1, 10) g`)
	d.exec(`CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b VALUES (1)`)
	cfg := WithDefaults(&dsl.PostgresSource{DSN: d.dsn, Tables: []string{"public.*"}, Exclude: []string{"public.a.secret"}}, "p")
	ev, err := Sample(context.Background(), cfg, "src", 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ev {
		if e.Op != change.Snapshot || e.Position.Source != "src" {
			t.Fatalf("event %+v", e)
		}
		if _, ok := e.After.Lookup("secret"); ok {
			t.Fatal("excluded column in a sample")
		}
		got = append(got, e.Table+":"+keyString(e.Key))
	}
	want := []string{"a:id=1;", "a:id=2;", "a:id=3;", "b:id=1;"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sample %v, want %v", got, want)
	}
	var n int
	d.conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_replication_slots WHERE database = current_database())`).Scan(&n)
	if n != 0 {
		t.Fatalf("Sample created %d publications or slots", n)
	}
}

func TestPeekShowsPendingChangesWithoutConsuming(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE a (id int PRIMARY KEY, v text)`)
	cfg := dsl.PostgresSource{Tables: []string{"public.a"}, Snapshot: "never", Slot: "peeked", Publication: "pub"}
	d.open(cfg, nil, newState()).Close() // creates slot and publication, like an earlier run
	d.exec(`INSERT INTO a VALUES (1, 'x'), (2, 'y')`)
	d.exec(`UPDATE a SET v = 'z' WHERE id = 1`)
	cfg.DSN = d.dsn
	peek := func() []change.Event {
		ev, err := Peek(context.Background(), &cfg, "src", 2)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	first := peek()
	if r := rows(first); len(r) != 2 || r[0].Op != change.Insert || r[1].After.Get("v") != "y" || first[2].Op != change.Mark {
		t.Fatalf("peek: %+v", first)
	}
	again := peek()
	if len(again) != len(first) || again[0].Position != first[0].Position {
		t.Fatalf("second peek differs: the first consumed changes")
	}
	// The pipeline still receives everything.
	p := d.open(cfg, nil, newState())
	if ev := rows(readUntil(t, p, countRows(3))); ev[0].Position != first[0].Position || ev[2].Op != change.Update {
		t.Fatalf("after peeking, the stream starts with %+v", ev[0].Position)
	}
}

func TestCheckLiveReportsEveryProblem(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE users (id int PRIMARY KEY, bio text, password text)`)
	d.exec(`CREATE TABLE loose (a int)`)
	cfg := WithDefaults(&dsl.PostgresSource{DSN: d.dsn, Tables: []string{"public.users", "public.loose", "public.nope"},
		Exclude: []string{"public.users.pasword"}}, "p")
	var got []string
	for _, f := range CheckLive(context.Background(), cfg) {
		got = append(got, string(f.Severity)+" "+f.Attribute+" "+f.Subject)
	}
	sort.Strings(got)
	want := []string{
		"error exclude public.users.pasword",
		"error tables public.loose",
		"error tables public.nope",
		"warning tables public.users", // bio and password are TOASTable under DEFAULT identity
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("findings\n got %q\nwant %q", got, want)
	}
	cfg.Tables, cfg.Exclude = []string{"public.users"}, nil
	d.exec(`ALTER TABLE users REPLICA IDENTITY FULL`)
	if f := CheckLive(context.Background(), cfg); len(f) != 0 {
		t.Fatalf("a valid source has findings: %v", f)
	}
}
