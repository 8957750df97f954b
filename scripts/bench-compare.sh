#!/usr/bin/env bash
# The standard workload (cmd/sluice-bench -compare) against bare limit
# loops in the same run: PostgreSQL → MariaDB, then PostgreSQL →
# PostgreSQL, RUNS times each (default 3), without the latency phase.
# Extra arguments go to sluice-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
for target in ${TARGETS:-mysql postgres}; do
	echo "== PostgreSQL → $target"
	TARGET=$target scripts/bench.sh -compare -runs "${RUNS:-3}" -latency 0 "$@"
done
