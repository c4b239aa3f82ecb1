#!/usr/bin/env bash
# Runs every Go fuzz target of the module for FUZZTIME each (a -fuzztime
# value; default 100000 executions, see the Makefile),
# as CI does. `go test -fuzz` takes one target of one package at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-100000x}"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  grep -lqs '^func Fuzz' "$dir"/*_test.go || continue
  for fn in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz $pkg $fn ($fuzztime)"
    go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" "$pkg"
  done
done
