package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/pgtest"
)

// openErr opens a source expected to fail and returns the error.
func openErr(t *testing.T, d *db, cfg dsl.PostgresSource) error {
	t.Helper()
	p, err := d.build(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = p.Open(ctx, nil, newState())
	p.Close()
	if err == nil {
		t.Fatal("Open succeeded, want an error")
	}
	return err
}

func wantMessage(t *testing.T, err error, permanent bool, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q\ndoes not mention %q", err, p)
		}
	}
	if engine.IsPermanent(err) != permanent {
		t.Errorf("IsPermanent = %v, want %v: %v", engine.IsPermanent(err), permanent, err)
	}
}

func TestFailuresSayWhatToDo(t *testing.T) {
	t.Run("wal_level not logical", func(t *testing.T) {
		c, err := pgtest.StartWith(pgtest.Options{WALLevel: "replica"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Stop()
		d := &db{t: t, dsn: c.DSN("postgres"), conn: mustConnect(t, c.DSN("postgres"))}
		d.exec(`CREATE TABLE w (id int PRIMARY KEY)`)
		wantMessage(t, openErr(t, d, dsl.PostgresSource{Tables: []string{"public.w"}}), true, "wal_level = replica", "ALTER SYSTEM SET wal_level = logical")
	})
	t.Run("unknown table", func(t *testing.T) {
		d := newDB(t)
		wantMessage(t, openErr(t, d, dsl.PostgresSource{Tables: []string{"public.nope"}}), true, "table public.nope does not exist")
	})
	t.Run("no key and default identity", func(t *testing.T) {
		d := newDB(t)
		d.exec(`CREATE TABLE loose (a int)`)
		wantMessage(t, openErr(t, d, dsl.PostgresSource{Tables: []string{"public.loose"}}), true,
			"public.loose has no primary key", `ALTER TABLE "public"."loose" REPLICA IDENTITY FULL`)
	})
	t.Run("excluded column missing", func(t *testing.T) {
		d := newDB(t)
		d.exec(`CREATE TABLE users (id int PRIMARY KEY, email text)`)
		wantMessage(t, openErr(t, d, dsl.PostgresSource{Tables: []string{"public.users"}, Exclude: []string{"public.users.pasword"}}), true,
			"column pasword does not exist in table public.users", "id, email")
	})
	t.Run("exclude under FULL identity", func(t *testing.T) {
		d := newDB(t)
		d.exec(`CREATE TABLE users (id int PRIMARY KEY, password text); ALTER TABLE users REPLICA IDENTITY FULL`)
		wantMessage(t, openErr(t, d, dsl.PostgresSource{Tables: []string{"public.users"}, Exclude: []string{"public.users.password"}}), true,
			"REPLICA IDENTITY FULL", "REPLICA IDENTITY DEFAULT")
		// Nothing was published that would break the application's writes.
		d.exec(`UPDATE users SET password = 'x'`)
	})
	t.Run("exclude of a replica identity index column", func(t *testing.T) {
		d := newDB(t)
		d.exec(`CREATE TABLE u (id int PRIMARY KEY, email text NOT NULL); CREATE UNIQUE INDEX u_email ON u (email); ALTER TABLE u REPLICA IDENTITY USING INDEX u_email`)
		wantMessage(t, openErr(t, d, dsl.PostgresSource{Tables: []string{"public.u"}, Exclude: []string{"public.u.email"}}), true,
			"part of the replica identity index of public.u")
	})
	t.Run("no REPLICATION privilege", func(t *testing.T) {
		d := newDB(t)
		role := fmt.Sprintf("norepl_%d", time.Now().UnixNano()%1e9)
		d.exec(`CREATE ROLE ` + role + ` LOGIN`)
		t.Cleanup(func() { cluster.Exec(context.Background(), "postgres", "DROP ROLE IF EXISTS "+role) })
		d.exec(`CREATE TABLE r (id int PRIMARY KEY)`)
		d.exec(`ALTER TABLE r OWNER TO ` + role)
		as := &db{t: t, dsn: strings.Replace(d.dsn, "postgres@", role+"@", 1)}
		err := openErr(t, as, dsl.PostgresSource{Tables: []string{"public.r"}})
		wantMessage(t, err, true, "no REPLICATION attribute", "ALTER ROLE")
		d.exec(`DROP TABLE r`)
	})
	t.Run("no SELECT on a table", func(t *testing.T) {
		d := newDB(t)
		role := fmt.Sprintf("nosel_%d", time.Now().UnixNano()%1e9)
		d.exec(`CREATE ROLE ` + role + ` LOGIN REPLICATION`)
		t.Cleanup(func() { cluster.Exec(context.Background(), "postgres", "DROP ROLE IF EXISTS "+role) })
		d.exec(`CREATE TABLE hidden (id int PRIMARY KEY)`)
		as := &db{t: t, dsn: strings.Replace(d.dsn, "postgres@", role+"@", 1)}
		wantMessage(t, openErr(t, as, dsl.PostgresSource{Tables: []string{"public.hidden"}}), true,
			"may not read table public.hidden", `GRANT SELECT ON "public"."hidden"`)
	})
	t.Run("publication owned by another role", func(t *testing.T) {
		d := newDB(t)
		suffix := time.Now().UnixNano() % 1e9
		app, other := fmt.Sprintf("app_%d", suffix), fmt.Sprintf("other_%d", suffix)
		d.exec(fmt.Sprintf(`CREATE ROLE %s LOGIN REPLICATION; CREATE ROLE %s LOGIN`, app, other))
		t.Cleanup(func() {
			cluster.Exec(context.Background(), "postgres", "DROP ROLE IF EXISTS "+app+"; DROP ROLE IF EXISTS "+other)
		})
		d.exec(`CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)`)
		d.exec(fmt.Sprintf(`ALTER TABLE a OWNER TO %s; ALTER TABLE b OWNER TO %s`, app, app))
		var dbname string
		d.conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&dbname)
		d.exec(fmt.Sprintf(`GRANT CREATE ON DATABASE %q TO %s, %s`, dbname, app, other))
		d.exec(`CREATE PUBLICATION pub FOR TABLE a`)
		d.exec(`ALTER PUBLICATION pub OWNER TO ` + other)
		as := &db{t: t, dsn: strings.Replace(d.dsn, "postgres@", app+"@", 1)}
		err := openErr(t, as, dsl.PostgresSource{Tables: []string{"public.a", "public.b"}, Publication: "pub"})
		wantMessage(t, err, true, "publication pub exists but is owned by role "+other, "OWNER TO")
		d.exec(`DROP PUBLICATION pub; DROP TABLE a, b; REVOKE CREATE ON DATABASE "` + dbname + `" FROM ` + app + `, ` + other)
	})
	t.Run("slot of another plugin", func(t *testing.T) {
		d := newDB(t)
		d.exec(`CREATE TABLE h (id int PRIMARY KEY)`)
		d.exec(`SELECT pg_create_logical_replication_slot('s', 'test_decoding')`)
		wantMessage(t, openErr(t, d, dsl.PostgresSource{Tables: []string{"public.h"}}), true,
			"replication slot s exists but is not a logical slot of the pgoutput plugin", "name another slot")
	})
	t.Run("slot held by another process", func(t *testing.T) {
		d := newDB(t)
		d.exec(`CREATE TABLE h (id int PRIMARY KEY)`)
		cfg := dsl.PostgresSource{Tables: []string{"public.h"}, Snapshot: "never"}
		p := d.open(cfg, nil, newState())
		d.exec(`INSERT INTO h VALUES (1)`)
		readUntil(t, p, countRows(1)) // the stream now holds the slot
		wantMessage(t, openErr(t, d, cfg), false, "replication slot s is in use by another process", "stop the other consumer")
	})
}

// TestPostgresRestartMidStreamLosesNothing is acceptance 6's second half.
func TestPostgresRestartMidStreamLosesNothing(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE r (id int PRIMARY KEY)`)
	p := d.open(dsl.PostgresSource{Tables: []string{"public.r"}, Snapshot: "never"}, nil, newState())
	for i := 1; i <= 50; i++ {
		d.exec(fmt.Sprintf(`INSERT INTO r VALUES (%d)`, i))
	}
	ev := readUntil(t, p, countRows(20))
	// A fast shutdown waits until the client confirms what it was sent,
	// so the test acknowledges like an engine whose sinks keep up.
	ackAll(t, p, ev[len(ev)-1])
	if err := cluster.Restart(); err != nil {
		t.Fatal(err)
	}
	d2 := &db{t: t, dsn: d.dsn, conn: mustConnect(t, d.dsn)}
	for i := 51; i <= 100; i++ {
		d2.exec(fmt.Sprintf(`INSERT INTO r VALUES (%d)`, i))
	}
	ev = append(ev, readUntil(t, p, func(more []change.Event) bool { return len(rows(ev))+len(rows(more)) >= 100 })...)
	seen := map[any]int{}
	for _, e := range rows(ev) {
		seen[e.Key.Get("id")]++
	}
	for i := int64(1); i <= 100; i++ {
		if seen[i] != 1 {
			t.Fatalf("id %d delivered %d times", i, seen[i])
		}
	}
	for i := 1; i < len(ev); i++ {
		if ev[i-1].Position.Compare(ev[i].Position) >= 0 {
			t.Fatalf("positions not increasing across the restart: %v then %v", ev[i-1].Position, ev[i].Position)
		}
	}
}
