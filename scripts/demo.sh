#!/usr/bin/env bash
# The README's demo: first the zero-dependency quickstart (file → transforms
# → stdout), then the product's main job: PostgreSQL `users` replicated into
# MariaDB with `password` excluded, through inserts, updates, a primary-key
# update and deletes, printing the MariaDB table after each step.
#
# It starts a throwaway PostgreSQL cluster (initdb, wal_level=logical) and
# uses the MariaDB on 127.0.0.1:3306 (or starts a private one), installing
# Debian packages where missing, and removes everything it made at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
go build -o bin/sluice ./cmd/sluice
sluice="$root/bin/sluice"

echo "== 1. quickstart: pipelines/quickstart.hcl (no database needed)"
qs=$(mktemp -d)
(cd "$qs" && "$sluice" run "$root/pipelines/quickstart.hcl" --log-format text 2>/dev/null)
rm -rf "$qs"

echo
echo "== 2. PostgreSQL → MariaDB: pipelines/users_to_mysql.hcl"
scripts/ensure-databases.sh
work=$(mktemp -d /tmp/sluice-demo.XXXXXX)
. scripts/throwaway-postgres.sh
sluice_pid=""
db=sluice_demo_$$
cleanup() {
	[ -n "$sluice_pid" ] && kill -TERM "$sluice_pid" 2>/dev/null && wait "$sluice_pid" 2>/dev/null || true
	stop_throwaway_postgres "$work"
	mariadb -h 127.0.0.1 -P 3306 -u root -e "DROP DATABASE IF EXISTS $db" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
start_throwaway_postgres "$work"
port=$PGPORT
psql() { command psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"; }
maria() { mariadb -h 127.0.0.1 -P 3306 -u root "$@"; }
maria -e "CREATE DATABASE $db"

psql -c "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, email text, password text, created_at timestamptz DEFAULT '2026-01-01T00:00:00Z')"
psql -c "INSERT INTO users (id, name, email, password) VALUES (1, 'Ada Lovelace', 'ada@example.com', 'analytical'), (2, 'Alan Turing', 'alan@example.com', 'enigma')"
echo "PostgreSQL users (password is there):"
psql -c "SELECT id, name, email, password FROM users ORDER BY id"

export SOURCE_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
export TARGET_DSN="root@tcp(127.0.0.1:3306)/$db"
(cd "$work" && exec "$sluice" run "$root/pipelines/users_to_mysql.hcl" --log-format text >"$work/sluice.log" 2>&1) &
sluice_pid=$!

# show waits until MariaDB's users table matches what the step expects
# (the count of rows and a checksum of the visible columns), then prints it.
expected() { psql -At -c "SELECT count(*) || ':' || coalesce(string_agg(id || '|' || name || '|' || coalesce(email, ''), ',' ORDER BY id), '') FROM users"; }
actual() { maria -N -B "$db" -e "SELECT CONCAT(COUNT(*), ':', COALESCE(GROUP_CONCAT(CONCAT(id, '|', name, '|', COALESCE(email, '')) ORDER BY id SEPARATOR ','), '')) FROM users" 2>/dev/null || true; }
show() {
	local want; want=$(expected)
	for _ in $(seq 1 200); do [ "$(actual)" = "$want" ] && break; sleep 0.1; done
	if [ "$(actual)" != "$want" ]; then
		echo "MariaDB did not catch up: want $want, have $(actual)"; cat "$work/sluice.log"; exit 1
	fi
	echo "MariaDB $db.users after: $1"
	maria -t "$db" -e "SELECT * FROM users ORDER BY id"
}
show "initial snapshot (no password column)"
psql -c "INSERT INTO users (id, name, email, password) VALUES (3, 'Grace Hopper', 'grace@example.com', 'cobol')"
show "insert id 3"
psql -c "UPDATE users SET email = 'ada@lovelace.example' WHERE id = 1"
show "update of id 1's email"
psql -c "UPDATE users SET id = 20 WHERE id = 2"
show "primary-key update 2 → 20"
psql -c "BEGIN; DELETE FROM users WHERE id = 3; INSERT INTO users (id, name, password) VALUES (4, 'Linus', 'penguin'); COMMIT"
show "one transaction: delete id 3, insert id 4"
echo "sluice status:"
kill -TERM "$sluice_pid"; wait "$sluice_pid" || true; sluice_pid=""
(cd "$work" && "$sluice" status "$root/pipelines/users_to_mysql.hcl") || true
echo "demo done: everything it created is being removed"
