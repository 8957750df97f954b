package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// TestUnchangedToastIsAbsentNeverNull: a >2 kB incompressible value that
// an update leaves alone is absent from After under DEFAULT and taken
// from the old row under FULL.
func TestUnchangedToastIsAbsentNeverNull(t *testing.T) {
	raw := make([]byte, 8000)
	rand.Read(raw)
	big := hex.EncodeToString(raw) // 16 kB of random text: really TOASTed out of line
	for _, tc := range []struct {
		identity string
		wantBody bool // the unchanged body is in After
		before   []string
	}{
		{"DEFAULT", false, []string{"id"}},
		{"FULL", true, []string{"body", "id", "n"}},
	} {
		t.Run(tc.identity, func(t *testing.T) {
			d := newDB(t)
			d.exec(`CREATE TABLE doc (id int PRIMARY KEY, n int, body text)`)
			d.exec(`ALTER TABLE doc REPLICA IDENTITY ` + tc.identity)
			d.exec(`INSERT INTO doc VALUES (1, 0, $1)`, big)
			p := d.open(dsl.PostgresSource{Tables: []string{"public.doc"}, Snapshot: "never"}, nil, newState())
			d.exec(`UPDATE doc SET n = 1 WHERE id = 1`)
			d.exec(`UPDATE doc SET id = 2 WHERE id = 1`)
			ev := rows(readUntil(t, p, countRows(2)))
			for i, e := range ev {
				body, ok := e.After.Lookup("body")
				if ok != tc.wantBody {
					t.Fatalf("update %d: body present = %v, want %v (after %v)", i, ok, tc.wantBody, keys(e.After))
				}
				if ok && body != big {
					t.Fatalf("update %d: body is %d bytes of something else", i, len(body.(string)))
				}
				if got := keys(e.Before); !reflect.DeepEqual(got, tc.before) {
					t.Fatalf("update %d: before has %v, want %v", i, got, tc.before)
				}
			}
			if ev[0].After.Get("n") != int64(1) || !slices.Contains(ev[0].Changed, "n") {
				t.Fatalf("first update: after %v changed %v", ev[0].After, ev[0].Changed)
			}
			if tc.identity == "FULL" && !reflect.DeepEqual(ev[0].Changed, []string{"n"}) {
				t.Fatalf("FULL identity: changed = %v, want [n]", ev[0].Changed)
			}
			// The key update carries the old key in before, the new one in Key.
			if ev[1].Before.Get("id") != int64(1) || ev[1].Key.Get("id") != int64(2) {
				t.Fatalf("key update: before %v key %v", ev[1].Before.Get("id"), ev[1].Key)
			}
			// Replayed onto a target that has the row, nothing is lost.
			target := map[string]change.Row{}
			replay(target, []change.Event{{Op: change.Insert, Table: "doc", Key: change.RowOf(map[string]any{"id": int64(1)}), After: change.RowOf(map[string]any{"id": int64(1), "n": int64(0), "body": big})}})
			replay(target, ev)
			if got := target["doc:"+keyString(change.RowOf(map[string]any{"id": int64(2)}))]; got.Get("body") != big || got.Get("n") != int64(1) {
				t.Fatalf("replayed row lost its body or n: n=%v, body %d bytes", got.Get("n"), len(got.Get("body").(string)))
			}
		})
	}
}

func keys(r change.Row) []string {
	k := r.Names()
	sort.Strings(k)
	return k
}

func TestTruncateAndDeleteEvents(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE a (id int PRIMARY KEY, v text)`)
	d.exec(`CREATE TABLE b (id int, v text)`)
	d.exec(`ALTER TABLE b REPLICA IDENTITY FULL`)
	p := d.open(dsl.PostgresSource{Tables: []string{"public.*"}, Snapshot: "never"}, nil, newState())
	d.exec(`INSERT INTO a VALUES (1, 'x'); INSERT INTO b VALUES (5, 'y')`)
	d.exec(`DELETE FROM a WHERE id = 1; DELETE FROM b WHERE id = 5`)
	d.exec(`TRUNCATE a, b`)
	ev := rows(readUntil(t, p, countRows(6)))
	var got []string
	for _, e := range ev {
		got = append(got, e.Op.String()+" "+e.Table)
	}
	sort.Strings(got[4:]) // one TRUNCATE of two tables: order inside it is PostgreSQL's
	want := []string{"insert a", "insert b", "delete a", "delete b", "truncate a", "truncate b"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if !sameRow(ev[2].Before, change.RowOf(map[string]any{"id": int64(1)})) {
		t.Errorf("delete under DEFAULT: before %v, want the key", ev[2].Before)
	}
	if !sameRow(ev[3].Before, change.RowOf(map[string]any{"id": int64(5), "v": "y"})) || !sameRow(ev[3].Key, change.RowOf(map[string]any{"id": int64(5), "v": "y"})) {
		t.Errorf("delete under FULL without key: before %v key %v, want the whole row", ev[3].Before, ev[3].Key)
	}
	if ev[4].Position.Offset != ev[5].Position.Offset || ev[4].Relation == nil {
		t.Errorf("truncate events: %+v %+v", ev[4].Position, ev[5].Position)
	}
}

func TestColumnAddedMidStreamIsANewRelationVersion(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE u (id int PRIMARY KEY, name text)`)
	p := d.open(dsl.PostgresSource{Tables: []string{"public.u"}, Snapshot: "never"}, nil, newState())
	d.exec(`INSERT INTO u VALUES (1, 'a')`)
	d.exec(`ALTER TABLE u ADD COLUMN email varchar(100) NOT NULL DEFAULT 'x@example.com'`)
	d.exec(`INSERT INTO u VALUES (2, 'b', 'b@example.com')`)
	d.exec(`UPDATE u SET name = 'c' WHERE id = 1`)
	ev := rows(readUntil(t, p, countRows(3)))
	r1, r2 := ev[0].Relation, ev[1].Relation
	if r1.Version != 1 || r2.Version != 2 || ev[2].Relation != r2 {
		t.Fatalf("versions %d, %d, %d; want 1, 2, 2 with the same *Relation", r1.Version, r2.Version, ev[2].Relation.Version)
	}
	col, ok := r2.Column("email")
	if !ok || col.Type != "character varying(100)" || len(r1.Columns) != 2 {
		t.Fatalf("new relation columns %+v", r2.Columns)
	}
	if ev[1].After.Get("email") != "b@example.com" || ev[2].After.Get("email") != "x@example.com" {
		t.Fatalf("email values: %v, %v", ev[1].After, ev[2].After)
	}
}

// TestExcludedColumnsNeverLeavePostgres is acceptance 4.
func TestExcludedColumnsNeverLeavePostgres(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE users (id int PRIMARY KEY, email text, password text)`)
	d.exec(`INSERT INTO users VALUES (1, 'a@x', 'hunter2')`)
	cfg := dsl.PostgresSource{Tables: []string{"public.users"}, Exclude: []string{"public.users.password"}, Publication: "pub"}
	p := d.open(cfg, nil, newState())
	d.exec(`INSERT INTO users VALUES (2, 'b@x', 'secret')`)
	d.exec(`UPDATE users SET password = 'changed', email = 'c@x' WHERE id = 1`)
	d.exec(`DELETE FROM users WHERE id = 2`)
	ev := rows(readUntil(t, p, countRows(4)))
	for _, e := range ev {
		for _, r := range []change.Row{e.Before, e.After, e.Key} {
			if _, ok := r.Lookup("password"); ok {
				t.Fatalf("%s event carries password: %v", e.Op, r)
			}
		}
		if _, ok := e.Relation.Column("password"); ok || slices.Contains(e.Changed, "password") {
			t.Fatalf("%s event's relation or changed names password", e.Op)
		}
	}
	var attnames []string
	if err := d.conn.QueryRow(context.Background(), `SELECT attnames FROM pg_publication_tables WHERE pubname = 'pub' AND tablename = 'users'`).Scan(&attnames); err != nil {
		t.Fatal(err)
	}
	if strings.Join(attnames, ",") != "id,email" {
		t.Fatalf("publication columns %v, want [id email]", attnames)
	}
	// Setup is idempotent, and an existing publication is altered to match.
	p.Close()
	cfg.Exclude = nil
	d.open(cfg, nil, newState()).Close()
	if err := d.conn.QueryRow(context.Background(), `SELECT attnames FROM pg_publication_tables WHERE pubname = 'pub' AND tablename = 'users'`).Scan(&attnames); err != nil {
		t.Fatal(err)
	}
	if strings.Join(attnames, ",") != "id,email,password" {
		t.Fatalf("after dropping exclude, publication columns %v", attnames)
	}
}

// TestReplicaIdentityUsingIndex: the old row of an update that changes
// the identity, and of a delete, holds the identity index's columns.
func TestReplicaIdentityUsingIndex(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE u (id int PRIMARY KEY, email text NOT NULL, n int); CREATE UNIQUE INDEX u_email ON u (email)`)
	d.exec(`ALTER TABLE u REPLICA IDENTITY USING INDEX u_email`)
	p := d.open(dsl.PostgresSource{Tables: []string{"public.u"}, Snapshot: "never"}, nil, newState())
	d.exec(`INSERT INTO u VALUES (1, 'a@x', 0)`)
	d.exec(`UPDATE u SET email = 'b@x' WHERE id = 1`)
	d.exec(`DELETE FROM u WHERE id = 1`)
	ev := rows(readUntil(t, p, countRows(3)))
	if !sameRow(ev[1].Before, change.RowOf(map[string]any{"email": "a@x"})) || ev[1].Key.Get("id") != int64(1) {
		t.Fatalf("update: before %v key %v", ev[1].Before, ev[1].Key)
	}
	if !sameRow(ev[2].Before, change.RowOf(map[string]any{"email": "b@x"})) || !sameRow(ev[2].Key, change.RowOf(map[string]any{"email": "b@x"})) {
		t.Fatalf("delete: before %v key %v", ev[2].Before, ev[2].Key)
	}
}
