// Package mariadbtest gives tests a MariaDB (or MySQL) server and a
// database of their own on it.
//
// Start uses the server at 127.0.0.1:3306 (user root, no password) when
// one answers there, or the one MARIADBTEST_DSN names (a go-sql-driver
// DSN without database, e.g. "root@tcp(127.0.0.1:3306)/"). Otherwise it
// starts a private mariadbd: mariadb-install-db into a temporary
// directory, a free TCP port on 127.0.0.1 and a unix socket there,
// thrown away by Stop. A private server can be stopped and started again
// with its data (Down, Up) to test what a target outage does.
//
// Use it from TestMain, because deferred calls before os.Exit never run:
//
//	var server *mariadbtest.Server
//
//	func TestMain(m *testing.M) { os.Exit(mariadbtest.Run(m, &server)) }
//
// and give each test its own database with server.CreateDB(t), dropped
// when the test ends. Without a reachable server and without the MariaDB
// binaries, Run fails the package with a message saying what to install,
// that `make test` installs and starts everything, and that
// SLUICE_SKIP_DB=1 skips instead; under CI=true it fails even then (a CI
// run that silently tests nothing is worse than a red one). Package
// dbskip holds that rule. A Server is safe for concurrent use.
package mariadbtest
