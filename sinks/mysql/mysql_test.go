package mysql

import (
	"database/sql"
	"fmt"
	"os"
	"testing"

	"github.com/sluice-cdc/sluice/internal/mariadbtest"
	"github.com/sluice-cdc/sluice/sinks/sqltable/sqltabletest"
)

var server *mariadbtest.Server

func TestMain(m *testing.M) { os.Exit(mariadbtest.Run(m, &server)) }

func target() sqltabletest.Target {
	return sqltabletest.Target{
		Name:     "mysql",
		New:      New,
		CreateDB: func(t testing.TB) string { return server.CreateDB(t) },
		// Without parseTime the text protocol returns every value as text.
		Open:  func(dsn string) (*sql.DB, error) { return sql.Open("mysql", dsn) },
		Text:  func(col string) string { return col },
		Quote: dialect{}.Quote,
		// MariaDB runs a FOR loop outside a procedure; KILL takes one id.
		KillOthers: "FOR p IN (SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()) DO KILL CONNECTION p.ID; END FOR",
		Outage: func(t testing.TB) (string, func(), func()) {
			// The shared server is not ours to stop: a private one is.
			private, err := mariadbtest.StartPrivate()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { private.Stop() })
			dsn := private.CreateDB(t)
			return dsn, func() { mustDo(t, private.Down()) }, func() { mustDo(t, private.Up()) }
		},
		BadDSN: func(secret string) string { return fmt.Sprintf("mysql://root:%s@127.0.0.1:1/x", secret) },
	}
}

func TestConformance(t *testing.T) { sqltabletest.Run(t, target()) }

func BenchmarkUpsert(b *testing.B) { sqltabletest.Bench(b, target()) }

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
