package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/internal/dbskip"
)

// TestPrivateServer starts a private mariadbd, creates a database in it
// and writes and reads a row there.
func TestPrivateServer(t *testing.T) {
	s, err := StartPrivate()
	if errors.Is(err, ErrNoServer) {
		dbskip.Missing(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
			t.Errorf("Stop left %s behind", s.dir)
		}
	}()
	if !s.Private() {
		t.Fatal("StartPrivate returned a shared server")
	}
	var dsn string
	t.Run("db", func(t *testing.T) {
		dsn = s.CreateDB(t)
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, "CREATE TABLE x (id INT PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO x VALUES (7)"); err != nil {
			t.Fatal(err)
		}
		var id int
		if err := db.QueryRowContext(ctx, "SELECT id FROM x").Scan(&id); err != nil || id != 7 {
			t.Fatalf("read back %d, %v", id, err)
		}
	})
	// Down and Up keep the data.
	if err := s.Down(); err != nil {
		t.Fatal(err)
	}
	if err := s.ping(0); err == nil {
		t.Fatal("the server still answers after Down")
	}
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(context.Background(), "SELECT 1 FROM mysql.user LIMIT 1"); err != nil {
		t.Fatalf("after Up: %v", err)
	}
	// The subtest's cleanup dropped its database.
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", cfg.DBName).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s left after cleanup", cfg.DBName)
	}
}
