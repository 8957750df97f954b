#!/usr/bin/env bash
# Makes sure the databases the test suite and the demo need are available,
# idempotently, on a fresh Debian/Ubuntu machine:
#   - PostgreSQL server binaries (initdb, postgres): the tests start their own
#     private cluster with wal_level=logical in a temp dir (internal/pgtest);
#   - a MariaDB server reachable on 127.0.0.1:3306 as root (internal/mariadbtest
#     uses it, or starts a private mariadbd when none runs);
#   - a NATS server with JetStream on 127.0.0.1:4222 (internal/natstest), the
#     one running or one started here, keeping its streams in a temp dir.
# It installs Debian packages only where something is missing.
set -euo pipefail

need_apt=()
pg_bindir() {
	if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
		pg_config --bindir
		return
	fi
	ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}
if [ -z "$(pg_bindir)" ] || [ ! -x "$(pg_bindir)/initdb" ]; then need_apt+=(postgresql); fi
if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then need_apt+=(mariadb-server); fi
if ! command -v mariadb >/dev/null 2>&1; then need_apt+=(mariadb-client); fi
nats_up() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }
if ! nats_up && ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then need_apt+=(nats-server); fi

if [ ${#need_apt[@]} -gt 0 ]; then
	echo "ensure-databases: installing ${need_apt[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

mariadb_up() { mariadb -h 127.0.0.1 -P 3306 -u root -e 'SELECT 1' >/dev/null 2>&1; }
if ! mariadb_up; then
	echo "ensure-databases: starting MariaDB" >&2
	mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
	if [ ! -d /var/lib/mysql/mysql ]; then
		mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null 2>&1 || true
	fi
	start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql >/dev/null 2>&1 || true
	for _ in $(seq 1 60); do mariadb_up && break; sleep 0.5; done
	if ! mariadb_up; then
		# A fresh install may give root unix_socket auth only; the harness then
		# starts a private server itself, so this is not fatal here.
		echo "ensure-databases: MariaDB is not reachable on 127.0.0.1:3306 as root; tests will start a private mariadbd" >&2
	fi
fi
if ! nats_up; then
	nats=$(command -v nats-server || echo /usr/sbin/nats-server)
	store=$(mktemp -d /tmp/sluice-nats-XXXXXX)
	start-stop-daemon --start --background --make-pidfile --pidfile "$store/nats.pid" --exec "$nats" -- -a 127.0.0.1 -p 4222 -js -sd "$store" >/dev/null 2>&1 || true
	for _ in $(seq 1 40); do nats_up && break; sleep 0.25; done
	nats_up || echo "ensure-databases: no NATS server on 127.0.0.1:4222; the NATS tests will skip (and fail under CI=true)" >&2
fi
echo "ensure-databases: PostgreSQL binaries in $(pg_bindir); MariaDB $(mariadb_up && echo up on 3306 || echo private); NATS $(nats_up && echo up on 4222 || echo missing)" >&2
