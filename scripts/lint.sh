#!/usr/bin/env bash
# Static checks beyond go vet, over every package and its tests:
#   - staticcheck, its default checks (bugs, simplifications, deprecated
#     APIs, and U1000: unused code);
#   - errorlint, comparisons (==, !=) and type assertions or switches on
#     errors, which miss a wrapped error: use errors.Is and errors.As.
#     Its -errorf check (fmt.Errorf formatting an error with %v instead of
#     %w) stays off: sluice formats a cause with %v on purpose where the
#     message is what matters and the cause must not be matched (a
#     corrupt-record message, an error that engine.Permanent classifies).
# Both are pinned and installed once, with `go install pkg@version` (which
# leaves go.mod alone), into a cache dir keyed by Go and tool version:
# SLUICE_TOOLS, default ${XDG_CACHE_HOME:-~/.cache}/sluice-tools.
set -euo pipefail
cd "$(dirname "$0")/.."
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2
ERRORLINT=codeberg.org/polyfloyd/go-errorlint@v1.9.1
tools=${SLUICE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice-tools}/$(go env GOVERSION)

# tool PKG@VERSION prints the path of the tool's binary, installing it first
# when it is not in the cache.
tool() {
	local dir="$tools/${1//\//_}" name=${1%@*}
	name=${name##*/}
	if [ ! -x "$dir/$name" ]; then
		echo "lint: installing $1 into $dir" >&2
		mkdir -p "$dir"
		GOBIN="$dir" GOFLAGS= go install "$1" >&2
	fi
	echo "$dir/$name"
}
staticcheck=$(tool "$STATICCHECK")
errorlint=$(tool "$ERRORLINT")

rc=0
echo "== staticcheck"
"$staticcheck" ./... || rc=1
echo "== errorlint"
"$errorlint" ./... || rc=1
exit $rc
