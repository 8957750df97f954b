#!/usr/bin/env bash
# The whole test suite: formatting, vet, every package's tests against real
# PostgreSQL and MariaDB, then every fuzz target: the pipeline-file parser
# and the expression compiler for FUZZTIME (default 30s), the decoders and
# the rest for FUZZTIME_OTHER (default 10s).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
FUZZTIME_OTHER=${FUZZTIME_OTHER:-10s}

scripts/ensure-databases.sh

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== go build"
go build ./...

echo "== go test"
go test -count=1 -timeout 20m ./... 2>&1 | tee /tmp/sluice-test.log

echo "== fuzz (FuzzLoad and FuzzCompile $FUZZTIME each, the others $FUZZTIME_OTHER)"
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
	pkg=./$(dirname "${f#./}")
	for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
		t=$FUZZTIME_OTHER
		case "$target" in FuzzLoad | FuzzCompile) t=$FUZZTIME ;; esac
		echo "-- $pkg $target ($t)"
		timeout 300 go test -run='^$' -fuzz="^${target}\$" -fuzztime="$t" "$pkg" >/tmp/sluice-fuzz.log 2>&1 || { cat /tmp/sluice-fuzz.log; exit 1; }
		tail -n 1 /tmp/sluice-fuzz.log
	done
done
echo "== all tests passed"
