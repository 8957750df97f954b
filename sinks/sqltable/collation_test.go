package sqltable

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/internal/dbskip"
	"github.com/sluice-cdc/sluice/internal/mariadbtest"
)

// collatedDialect is the part of a MySQL-like dialect warnInexactKeys
// uses (sinks/mysql cannot be imported here: it imports this package).
type collatedDialect struct{ Dialect }

func (collatedDialect) Quote(s string) string { return "`" + s + "`" }
func (collatedDialect) FoldsCase() bool       { return true }
func (collatedDialect) CollationsQuery() string {
	return "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND COLLATION_NAME IS NOT NULL"
}
func (collatedDialect) InexactCollation(_, c string) string {
	if strings.HasSuffix(c, "_nopad_bin") {
		return ""
	}
	return "is not exact"
}
func (collatedDialect) ExactKey(table, col, typ string) string {
	return "ALTER TABLE " + table + " MODIFY " + col + " " + typ + " COLLATE utf8mb4_nopad_bin"
}

func TestWarnInexactKeys(t *testing.T) {
	srv, err := mariadbtest.Start()
	if errors.Is(err, mariadbtest.ErrNoServer) {
		dbskip.Missing(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sql.Open("mysql", srv.CreateDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		"CREATE TABLE ci (Code VARCHAR(20) COLLATE utf8mb4_general_ci NOT NULL, n INT NOT NULL, other VARCHAR(5) COLLATE utf8mb4_general_ci, PRIMARY KEY (Code, n))",
		"CREATE TABLE exact (code VARCHAR(20) COLLATE utf8mb4_nopad_bin NOT NULL PRIMARY KEY, other VARCHAR(5) COLLATE utf8mb4_general_ci)",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var logs bytes.Buffer
	d := collatedDialect{}
	s := &Sink{d: d, tgt: Target{Dialect: d}, opts: options{mode: ModeUpsert}, name: "t", tx: tx,
		log: slog.New(slog.NewTextHandler(&logs, nil))}
	ci := &table{name: Name{Table: "ci"}, key: []string{"code", "n"}, cols: map[string]string{"Code": "varchar(20)", "n": "int(11)", "other": "varchar(5)"}}
	exact := &table{name: Name{Table: "exact"}, key: []string{"code"}, cols: map[string]string{"code": "varchar(20)", "other": "varchar(5)"}}
	s.warnInexactKeys(ctx, ci)
	s.warnInexactKeys(ctx, exact)
	s.warnInexactKeys(ctx, ci) // loaded again: no second warning
	out := logs.String()
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Fatalf("%d warnings, want 1 (the key column Code of ci, once):\n%s", n, out)
	}
	for _, want := range []string{"table=ci", "column=Code", "collation=utf8mb4_general_ci", "ALTER TABLE `ci` MODIFY `Code` varchar(20) COLLATE utf8mb4_nopad_bin"} {
		if !strings.Contains(out, want) {
			t.Errorf("warning lacks %q:\n%s", want, out)
		}
	}
	// Append mode matches no rows by the key: nothing to warn about.
	logs.Reset()
	a := &Sink{d: d, tgt: Target{Dialect: d}, opts: options{mode: ModeAppend}, name: "a", tx: tx, log: slog.New(slog.NewTextHandler(&logs, nil))}
	a.warnInexactKeys(ctx, ci)
	if logs.Len() != 0 {
		t.Errorf("append mode warned:\n%s", logs.String())
	}
}

// serverDialect learns nothing but says it was asked.
type serverDialect struct {
	collatedDialect
	learned bool
}

func (d serverDialect) ForServer(context.Context, *sql.DB) (Dialect, error) {
	return serverDialect{learned: true}, nil
}

func (serverDialect) Hint(err error) string {
	if strings.Contains(err.Error(), "name") {
		return "rename it"
	}
	return ""
}

func TestLearnServerAndHint(t *testing.T) {
	s := &Sink{d: serverDialect{}, tgt: Target{Dialect: serverDialect{}}}
	if err := s.learnServer(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d, ok := s.d.(serverDialect); !ok || !d.learned {
		t.Fatalf("after learnServer the sink's dialect is %#v, want the one ForServer returned", s.d)
	}
	if got := s.hint(errors.New("bad name")); got != ": rename it" {
		t.Errorf("hint: %q", got)
	}
	if got := s.hint(errors.New("deadlock")); got != "" {
		t.Errorf("hint without a fix: %q", got)
	}
	plain := &Sink{d: collatedDialect{}, tgt: Target{Dialect: collatedDialect{}}}
	if err := plain.learnServer(context.Background()); err != nil || plain.d != (collatedDialect{}) {
		t.Errorf("a dialect without ForServer: %v, %#v", err, plain.d)
	}
}
