#!/usr/bin/env bash
# The whole test suite: formatting, vet, the static checks of
# scripts/lint.sh, every package's tests against real PostgreSQL and
# MariaDB (those of engine, sources and sinks, where the goroutines are,
# under the race detector: each package is tested once, with -race or
# without), then every fuzz target: the pipeline-file parser and the
# expression compiler for FUZZTIME (default 30s), the decoders and the rest
# for FUZZTIME_OTHER (default 10s).
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
scripts/lint.sh

# -race needs cgo, so a C compiler.
if ! command -v "$(go env CC)" >/dev/null 2>&1; then
	echo "test: installing gcc for go test -race" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
fi
race=$(go list ./engine/... ./sources/... ./sinks/...)
rest=$(go list ./... | grep -vxF "$race")
echo "== go test -race (engine, sources, sinks), then go test (the rest)"
(
	rc=0
	CGO_ENABLED=1 go test -race -count=1 -timeout 20m $race || rc=1
	go test -count=1 -timeout 20m $rest || rc=1
	exit $rc
) 2>&1 | tee /tmp/sluice-test.log

echo "== fuzz (FuzzLoad and FuzzCompile $FUZZTIME each, the others $FUZZTIME_OTHER)"
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
	pkg=./$(dirname "${f#./}")
	for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
		t=$FUZZTIME_OTHER
		case "$target" in FuzzLoad | FuzzCompile) t=$FUZZTIME ;; esac
		echo "-- $pkg $target ($t)"
		if ! timeout 300 go test -run='^$' -fuzz="^${target}\$" -fuzztime="$t" "$pkg" >/tmp/sluice-fuzz.log 2>&1; then
			# Go 1.26's fuzz coordinator can report the end of -fuzztime
			# itself as a failure, "context deadline exceeded", with no
			# failing input (go.dev/issue/75804, fixed in Go 1.27): the
			# target was fuzzed for its whole time and found nothing.
			if grep -qx '[[:space:]]*context deadline exceeded' /tmp/sluice-fuzz.log && ! grep -q 'Failing input written to' /tmp/sluice-fuzz.log; then
				echo "ok (the fuzzing ran its $t; Go reported its own deadline as a failure, go.dev/issue/75804)"
				continue
			fi
			cat /tmp/sluice-fuzz.log
			exit 1
		fi
		tail -n 1 /tmp/sluice-fuzz.log
	done
done
echo "== all tests passed"
