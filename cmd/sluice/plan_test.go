package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const planSourceDDL = `CREATE EXTENSION citext;
CREATE DOMAIN year AS integer CHECK (VALUE >= 1901 AND VALUE <= 2155);
CREATE TYPE mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R');
CREATE TABLE films (film_id serial PRIMARY KEY, title varchar(255) NOT NULL DEFAULT 'untitled', release_year year,
  rating mpaa_rating NOT NULL DEFAULT 'G', ratings mpaa_rating[], fulltext tsvector, lengths int4range, seat point,
  ip inet, price money NOT NULL DEFAULT 0, email citext, copies integer NOT NULL DEFAULT 3, code text UNIQUE);
INSERT INTO films (title, release_year, rating, ratings, fulltext, lengths, seat, ip, price, email, code)
  VALUES ('Academy Dinosaur', 2006, 'PG', '{G,R}', 'academy dinosaur', '[90,120)', '(1,2)', '10.0.0.1', 4.99, 'a@b', 'x')`

// pgColumns reads the columns of films in a PostgreSQL database as
// pg_dump --schema-only would state them: name, format_type, NOT NULL,
// default, in order.
func pgColumns(t *testing.T, dsn string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
		|| coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = to_regclass('public.films') AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var types string
	if err := conn.QueryRow(context.Background(), `SELECT coalesce(string_agg(typname || ':' || typtype::text, ',' ORDER BY typname), '') FROM pg_type
		WHERE typnamespace = 'public'::regnamespace AND typtype IN ('d', 'e')`).Scan(&types); err != nil {
		t.Fatal(err)
	}
	return strings.Join(cols, "\n") + "\ntypes " + types
}

// showCreate is MariaDB's SHOW CREATE TABLE films, "" without the table,
// and the database's table list.
func showCreate(t *testing.T, dsn string) string {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables []string
	rows, err := db.Query("SHOW TABLES")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var name, ddl string
	if err := db.QueryRow("SHOW CREATE TABLE films").Scan(&name, &ddl); err != nil && !strings.Contains(err.Error(), "1146") {
		t.Fatal(err)
	}
	return ddl + "\ntables " + strings.Join(tables, ",")
}

// TestPlanPrintsTheDDLTheRunExecutes: on empty targets `sluice plan`
// prints the statements that create the tables and changes nothing;
// those statements, run by hand on other empty databases, make the
// tables the first run creates (same pg_dump-style columns and types,
// same SHOW CREATE TABLE), and the rows arrive (equal as text in the
// replica, as docs/type-mapping.md says in MariaDB); on a drifted target
// it prints the differences, and still changes nothing.
func TestPlanPrintsTheDDLTheRunExecutes(t *testing.T) {
	srv := startMariaDB(t)
	cl := startCluster(t)
	src := cl.CreateDB(t)
	mustExecPG(t, src, planSourceDDL)
	pgTarget, pgByHand := cl.CreateDB(t), cl.CreateDB(t)
	for _, dsn := range []string{pgTarget, pgByHand} {
		mustExecPG(t, dsn, "CREATE EXTENSION citext")
	}
	myTarget, myByHand := srv.CreateDB(t), srv.CreateDB(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "plan.hcl", fmt.Sprintf(`pipeline "plan" {
  state = %q
}

source "postgres" "app" {
  dsn       = %q
  tables    = ["public.films"]
  heartbeat = "1s"
}

sink "postgres" "pg" {
  from        = source.app
  dsn         = %q
  auto_create = true
}

sink "mysql" "my" {
  from        = source.app
  dsn         = %q
  auto_create = true
}
`, filepath.Join(dir, "plan.db"), src, pgTarget, myTarget))

	// A target without the extension a column's type belongs to.
	bare := cl.CreateDB(t)
	barePath := writeFile(t, dir, "bare.hcl", fmt.Sprintf(`pipeline "bare" {}

source "postgres" "app" {
  dsn    = %q
  tables = ["public.films"]
}

sink "postgres" "bare" {
  from        = source.app
  dsn         = %q
  auto_create = true
}
`, src, bare))
	code, stdout, stderr := runCLI(t, "plan", barePath)
	if code != exitOK || !strings.Contains(stdout, `~ postgres sink "bare": column "email": type public.citext belongs to extension citext, which the target database lacks: run CREATE EXTENSION "citext" on the target`) {
		t.Errorf("plan of a target without citext: exit %d\n%s%s", code, stdout, stderr)
	}

	before := pgColumns(t, pgTarget) + showCreate(t, myTarget)
	code, stdout, stderr = runCLI(t, "plan", "--json", path)
	if code != exitOK {
		t.Fatalf("plan: exit %d\n%s%s", code, stdout, stderr)
	}
	var plans []sinkPlan
	if err := json.Unmarshal([]byte(stdout), &plans); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if after := pgColumns(t, pgTarget) + showCreate(t, myTarget); after != before {
		t.Errorf("plan changed the targets:\n%s\nwas\n%s", after, before)
	}
	stmts := map[string][]string{}
	for _, p := range plans {
		if p.Error != "" || len(p.Tables) != 1 || p.Tables[0].Exists || p.Tables[0].Source != "public.films" {
			t.Fatalf("plan of sink %s: %+v", p.Sink, p)
		}
		stmts[p.Sink] = p.Tables[0].Statements
	}
	pgPlan := strings.Join(stmts["pg"], ";\n")
	for _, want := range []string{`CREATE DOMAIN "public"."year" AS integer CHECK (((VALUE >= 1901) AND (VALUE <= 2155)))`,
		`CREATE TYPE "public"."mpaa_rating" AS ENUM ('G', 'PG', 'PG-13', 'R')`, `"release_year" year`, `"fulltext" tsvector`,
		`"rating" mpaa_rating NOT NULL DEFAULT 'G'`, `"email" citext`} {
		if !strings.Contains(pgPlan, want) {
			t.Errorf("the postgres plan lacks %s:\n%s", want, pgPlan)
		}
	}
	for _, s := range stmts["pg"] {
		mustExecPG(t, pgByHand, s)
	}
	my, err := sql.Open("mysql", myByHand)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	for _, s := range stmts["my"] {
		if _, err := my.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}

	// The first run creates the same tables.
	run := startRun(t, path)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(showCreate(t, myTarget), "CREATE TABLE") || !strings.Contains(pgColumns(t, pgTarget), "film_id") {
		if time.Now().After(deadline) {
			t.Fatalf("the run created no tables\n%s", run.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	run.stop(t)
	if got, want := pgColumns(t, pgTarget), pgColumns(t, pgByHand); got != want {
		t.Errorf("the run created\n%s\nthe plan's statements\n%s", got, want)
	}
	// The run also made its checkpoint table.
	if got, want := showCreate(t, myTarget), showCreate(t, myByHand); !strings.HasPrefix(got, strings.Split(want, "\ntables")[0]) {
		t.Errorf("the run created\n%s\nthe plan's statements\n%s", got, want)
	}

	// The values arrived: equal as text in the replica, as documented in MariaDB.
	rowText := func(dsn string) string {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var s string
		if err := conn.QueryRow(context.Background(), "SELECT f::text FROM films f").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got, want := rowText(pgTarget), rowText(src); got != want {
		t.Errorf("replica row %s, source row %s", got, want)
	}
	var myRow string
	myT0, err := sql.Open("mysql", myTarget)
	if err != nil {
		t.Fatal(err)
	}
	defer myT0.Close()
	if err := myT0.QueryRow("SELECT CONCAT_WS('|', film_id, title, release_year, rating, ratings, `fulltext`, lengths, seat, ip, price, email, copies, code) FROM films").Scan(&myRow); err != nil {
		t.Fatal(err)
	}
	if want := `1|Academy Dinosaur|2006|PG|["G","R"]|'academy' 'dinosaur'|[90,120)|(1,2)|10.0.0.1|$4.99|a@b|3|x`; myRow != want {
		t.Errorf("MariaDB row %s, want %s", myRow, want)
	}

	// A drifted target: the plan says what differs, and changes nothing.
	if _, err := my.Exec("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	myT, err := sql.Open("mysql", myTarget)
	if err != nil {
		t.Fatal(err)
	}
	defer myT.Close()
	if _, err := myT.Exec("ALTER TABLE films MODIFY title VARCHAR(100) NULL"); err != nil {
		t.Fatal(err)
	}
	mustExecPG(t, pgTarget, "ALTER TABLE films ALTER COLUMN copies DROP DEFAULT, ALTER COLUMN price TYPE numeric(10,2)")
	before = pgColumns(t, pgTarget) + showCreate(t, myTarget)
	code, stdout, stderr = runCLI(t, "plan", path)
	if code != exitOK {
		t.Fatalf("plan: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("plan of the drifted targets:\n%s", stdout)
	for _, want := range []string{
		`sink "pg" (postgres):`, "public.films -> films: exists",
		"~ column copies: default none, 3 at the source",
		"~ column price: type numeric(10,2), sluice creates money for source type money",
		`sink "my" (mysql):`,
		"~ column title: type varchar(100), sluice creates VARCHAR(255) for source type character varying(255)",
		"~ column title: nullable, NOT NULL at the source",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan output lacks %q:\n%s", want, stdout)
		}
	}
	if after := pgColumns(t, pgTarget) + showCreate(t, myTarget); after != before {
		t.Errorf("plan changed the drifted targets:\n%s\nwas\n%s", after, before)
	}
}
