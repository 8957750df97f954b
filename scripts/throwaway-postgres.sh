# Sourced by the demo and benchmark scripts: start_throwaway_postgres DIR
# initialises and starts a private PostgreSQL cluster in DIR/pg with
# wal_level=logical on a free port, and sets PGPORT and PG_BIN;
# stop_throwaway_postgres DIR stops it.
pg_as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start_throwaway_postgres() {
	local dir=$1
	PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	chmod 755 "$dir"
	[ "$(id -u)" = 0 ] && chown postgres "$dir"
	pg_as_owner "$PG_BIN/initdb" -D "$dir/pg" -A trust -U postgres >/dev/null
	pg_as_owner "$PG_BIN/pg_ctl" -D "$dir/pg" -w -l "$dir/pg.log" \
		-o "-c wal_level=logical -c port=$PGPORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c fsync=off -c max_wal_size=4GB" start >/dev/null
	export PGPORT PG_BIN
}

stop_throwaway_postgres() {
	pg_as_owner "$PG_BIN/pg_ctl" -D "$1/pg" -m immediate stop >/dev/null 2>&1 || true
}
