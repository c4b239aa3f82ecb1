#!/usr/bin/env bash
# Runs every Go fuzz target of the module for FUZZTIME each (a -fuzztime
# value: a count of executions such as 20000x, or a duration such as 10m
# for long runs; default 100000x, see the Makefile; FUZZTIME_<target>
# overrides it for one target), then prints one table:
# target, executions, new corpus entries, time, result. `go test -fuzz`
# takes one target of one package at a time. Every target runs even after
# one fails; the script fails if any did (the failing input is in the
# package's testdata/fuzz/<target>/: commit it with the fix, it becomes a
# seed that `go test` runs every time).
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-100000x}"
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
rows=()
failed=0
for dir in $(grep -lsE '^func Fuzz' --include='*_test.go' -r . | grep -v '^./.tools/' | xargs -n1 dirname | sort -u); do
  pkg=$(go list "$dir") || { failed=1; continue; }
  for fn in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go | awk '{print $2}' | sort -u); do
    own="FUZZTIME_${fn}"
    budget="${!own:-$fuzztime}"
    echo "fuzz $pkg $fn ($budget)"
    out="$log/$fn.log"
    start=$(date +%s)
    go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$budget" "$pkg" 2>&1 | tee "$out" | grep --line-buffered -v '^fuzz: elapsed'
    rc=${PIPESTATUS[0]}
    secs=$(( $(date +%s) - start ))
    last=$(grep '^fuzz: elapsed' "$out" | tail -1)
    execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
    fresh=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
    result=pass
    if [ "$rc" -ne 0 ]; then result=FAIL; failed=1; fi
    rows+=("$(printf '| %s.%s | %s | %s | %ss | %s |' "${pkg#github.com/dewarhq/dewar/}" "$fn" "${execs:-?}" "${fresh:-?}" "$secs" "$result")")
  done
done
echo
echo "| target | executions | new corpus entries | time | result |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
exit $failed
