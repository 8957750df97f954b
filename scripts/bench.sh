#!/usr/bin/env bash
# The standard end-to-end workload (cmd/sluice-bench) against a throwaway
# PostgreSQL source and MariaDB (TARGET=mysql, default) or a PostgreSQL
# database (TARGET=postgres) as target. Extra arguments go to sluice-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-databases.sh
go build -o bin/sluice ./cmd/sluice
go build -o bin/sluice-bench ./cmd/sluice-bench
work=$(mktemp -d /tmp/sluice-bench.XXXXXX)
. scripts/throwaway-postgres.sh
db=sluice_bench_$$
cleanup() {
	stop_throwaway_postgres "$work"
	mariadb -h 127.0.0.1 -P 3306 -u root -e "DROP DATABASE IF EXISTS $db" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
start_throwaway_postgres "$work"
source_dsn="postgres://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable"
case "${TARGET:-mysql}" in
mysql)
	mariadb -h 127.0.0.1 -P 3306 -u root -e "CREATE DATABASE $db"
	bin/sluice-bench -source-dsn "$source_dsn" -target mysql -target-dsn "root@tcp(127.0.0.1:3306)/$db" "$@" ;;
postgres)
	psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "CREATE DATABASE $db"
	bin/sluice-bench -source-dsn "$source_dsn" -target postgres -target-dsn "postgres://postgres@127.0.0.1:$PGPORT/$db?sslmode=disable" "$@" ;;
*) echo "TARGET must be mysql or postgres" >&2; exit 2 ;;
esac
