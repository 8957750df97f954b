# The two commands a new user runs (see README.md):
#   make demo   run a pipeline end to end (quickstart, then PostgreSQL → MariaDB)
#   make test   the whole test suite (installs and starts what it needs)
# make lint runs the static checks alone (make test runs them too).
GO ?= go

.PHONY: build demo quickstart test lint bench bench-mysql bench-postgres bench-compare clean

build:
	$(GO) build -o bin/sluice ./cmd/sluice

quickstart: build
	./bin/sluice run pipelines/quickstart.hcl

demo: build
	scripts/demo.sh

test:
	scripts/test.sh

lint:
	scripts/lint.sh

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

clean:
	rm -rf bin .sluice

bench-mysql:
	TARGET=mysql scripts/bench.sh

bench-postgres:
	TARGET=postgres scripts/bench.sh

bench-compare:
	scripts/bench-compare.sh
