// Package pgtest starts a private PostgreSQL cluster for tests: initdb in
// a temporary directory, wal_level=logical, a free TCP port on 127.0.0.1,
// its unix socket inside the temporary directory, trust authentication and
// fsync off (the data is thrown away, so durability only costs time).
//
// Use it from TestMain, because deferred calls before os.Exit never run:
//
//	var cluster *pgtest.Cluster
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Run(m, &cluster)) }
//
// and give each test its own database with cluster.CreateDB(t), dropped
// (with its replication slots) when the test ends.
//
// When the PostgreSQL binaries are missing, Run fails the package with a
// message saying what to install, that `make test` installs and starts
// everything, and that SLUICE_SKIP_DB=1 skips instead; under CI=true it
// fails even then (a CI run that silently tests nothing is worse than a
// red one). Package dbskip holds that rule.
//
// PostgreSQL refuses to run as root; when the test runs as root the
// cluster runs as the "postgres" OS user (the data directory is chowned
// to it). A Cluster is safe for concurrent use by parallel tests.
package pgtest
