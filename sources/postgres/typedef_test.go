package postgres

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	sinkpg "github.com/sluice-cdc/sluice/sinks/postgres"
)

// filmsDDL is a DVD-rental table with every kind of type a replica must
// keep: a domain with a CHECK, an enum, arrays of both, full-text,
// ranges, geometric, network, money, an extension's type, NOT NULL
// columns with DEFAULTs and a generated column.
const filmsDDL = `CREATE EXTENSION citext;
CREATE DOMAIN year AS integer CHECK (VALUE >= 1901 AND VALUE <= 2155);
CREATE TYPE mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R');
CREATE TABLE films (film_id serial PRIMARY KEY, title varchar(255) NOT NULL DEFAULT 'untitled', release_year year,
  rating mpaa_rating NOT NULL DEFAULT 'G', ratings mpaa_rating[], years year[], fulltext tsvector, lengths int4range,
  showing tstzrange, seat point, ip inet, mac macaddr, price money NOT NULL DEFAULT 0, email citext,
  copies integer NOT NULL DEFAULT 3, double_copies integer GENERATED ALWAYS AS (copies * 2) STORED, rental_rate numeric(4,2) NOT NULL DEFAULT 4.99,
  last_update timestamp with time zone NOT NULL DEFAULT now())`

const filmRow = `INSERT INTO films (title, release_year, rating, ratings, years, fulltext, lengths, showing, seat, ip, mac, price, email, copies)
  VALUES ('Academy Dinosaur', 2006, %s, %s, '{1999,2001}', to_tsvector('english', 'academy dinosaurs'), '[90,120)',
  '[2024-01-01,2024-02-01)', '(1,2)', '192.168.0.1/24', '08:00:2b:01:02:03', 4.99, 'Ann@Example.com', 7)`

// columnDefs reads each column of table as "name type NOT NULL default".
func columnDefs(t *testing.T, conn *pgx.Conn, table string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
		|| coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, table)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return defs
}

// TestAutoCreatedReplicaKeepsTheSourceDDL streams the films table into
// a PostgreSQL sink with auto_create: the created table has the source's
// columns in order, with format_type, NOT NULL and constant DEFAULTs
// equal (now() included; the serial's nextval, which needs the source's
// sequence, is left out), the generated column computed by the target, and every row
// equal as text, also one using an enum label added on the source
// mid-stream (the source describes the enum again: a new Relation
// version whose TypeDef has the label, before the row that uses it).
func TestAutoCreatedReplicaKeepsTheSourceDDL(t *testing.T) {
	d := newDB(t)
	d.exec(filmsDDL)
	p := d.open(dsl.PostgresSource{Tables: []string{"public.films"}, Snapshot: "never"}, nil, newState())
	d.exec(sprintf(filmRow, "'PG'", "'{G,R}'"))
	events := readUntil(t, p, untilMarks(1)) // the relation is described before the label exists
	d.exec(`ALTER TYPE mpaa_rating ADD VALUE 'NC-17'`)
	d.exec(sprintf(filmRow, "'NC-17'", "'{NC-17,G}'"))
	events = append(events, readUntil(t, p, untilMarks(1))...)
	ev := rows(events)
	if len(ev) != 2 {
		t.Fatalf("events %+v", ev)
	}
	first, second := ev[0].Relation, ev[1].Relation
	if second.Version <= first.Version {
		t.Errorf("the row with the new label has relation version %d, the one before %d: want a newer one", second.Version, first.Version)
	}
	for _, c := range []struct {
		rel    *change.Relation
		labels []string
	}{{first, []string{"G", "PG", "PG-13", "R"}}, {second, []string{"G", "PG", "PG-13", "R", "NC-17"}}} {
		rating, _ := c.rel.Column("rating")
		if td := rating.TypeDef; td == nil || td.Kind != change.TypeEnum || !slices.Equal(td.Labels, c.labels) {
			t.Errorf("rating's TypeDef in version %d: %+v, want an enum of %v", c.rel.Version, td, c.labels)
		}
	}
	year, _ := first.Column("release_year")
	if td := year.TypeDef; td == nil || td.Kind != change.TypeDomain || td.Base != "integer" || len(td.Checks) != 1 || !strings.Contains(td.Checks[0], "VALUE >= 1901") {
		t.Errorf("release_year's TypeDef: %+v", td)
	}
	email, _ := first.Column("email")
	if td := email.TypeDef; td == nil || td.Kind != change.TypeExtension || td.Extension != "citext" {
		t.Errorf("email's TypeDef: %+v", td)
	}

	// Into a replica.
	tgtDSN := cluster.CreateDB(t)
	tgt, err := pgx.Connect(context.Background(), tgtDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close(context.Background())
	if _, err := tgt.Exec(context.Background(), "CREATE EXTENSION citext"); err != nil {
		t.Fatal(err)
	}
	sink, err := sinkpg.New(engine.Build{Pipeline: engine.Pipeline{Name: "test"}},
		&dsl.Sink{Type: "postgres", Name: "replica", Postgres: &dsl.TableSink{DSN: tgtDSN, AutoCreate: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cp, err := sink.Open(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if err := sink.Write(ctx, events); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		cp.Advance(e.Position)
	}
	if _, err := sink.Flush(ctx, cp); err != nil {
		t.Fatal(err)
	}
	src := columnDefs(t, d.conn, "films")
	src[0] = "film_id integer NOT NULL" // nextval('films_film_id_seq'::regclass) needs the source's sequence
	if got := columnDefs(t, tgt, "films"); strings.Join(got, "\n") != strings.Join(src, "\n") {
		t.Errorf("target columns:\n%s\nwant the source's:\n%s", strings.Join(got, "\n"), strings.Join(src, "\n"))
	}
	read := func(conn *pgx.Conn) []string {
		rows, err := conn.Query(ctx, "SELECT f::text FROM films f ORDER BY film_id")
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got, want := read(tgt), read(d.conn); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("target rows:\n%s\nwant the source's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
