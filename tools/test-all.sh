#!/bin/sh
# `make test-all`: openai.core built for each runtime and the whole suite
# run under each (tools/run-tests.sh), in turn: one line per runtime with
# its counts and time, its failures below it, and a last line
# "N passed, M failed" summed over all runtimes.
#
#   sh tools/test-all.sh [RUNTIME...]   (default lua5.1 lua5.2 lua5.3 lua5.4 luajit)
#
# Builds with $MAKE (the Makefile passes its own). Logs: build/test-all/
# (<runtime>.build.log, <runtime>.log); TAP: build/test-<runtime>.tap.
# The runtimes run one after the other: the specs start servers on free
# ports and time some waits, which a second suite on the same two cores
# would disturb.
cd "$(dirname "$0")/.." || exit 2
MAKE=${MAKE:-make}
runtimes=${*:-lua5.1 lua5.2 lua5.3 lua5.4 luajit}
logs=build/test-all
mkdir -p "$logs"

total_passed=0
total_failed=0
total_skipped=0
started=$(date +%s)
for lua in $runtimes; do
  start=$(date +%s)
  if $MAKE --no-print-directory LUA="$lua" all > "$logs/$lua.build.log" 2>&1; then
    LUA=$lua sh tools/run-tests.sh > "$logs/$lua.log" 2>&1
    summary=$(tail -n 1 "$logs/$lua.log")
  else
    summary="0 passed, 1 failed (the build failed: $logs/$lua.build.log)"
  fi
  passed=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed, .*/\1/p')
  failed=$(echo "$summary" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p')
  skipped=$(echo "$summary" | sed -n 's/.*, \([0-9]*\) skipped.*/\1/p')
  if [ -z "$passed" ] || [ -z "$failed" ]; then
    summary="no summary line: $logs/$lua.log"
    passed=0
    failed=1
  fi
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  total_skipped=$((total_skipped + ${skipped:-0}))
  printf 'test-all: %-7s %s  %4ss\n' "$lua" "$summary" "$(( $(date +%s) - start ))"
  if [ "$failed" -gt 0 ]; then
    if [ -f "$logs/$lua.log" ]; then sed -e '$d' -e 's/^/    /' "$logs/$lua.log"; else tail -n 20 "$logs/$lua.build.log" | sed 's/^/    /'; fi
  fi
done
echo "test-all: $(( $(date +%s) - started ))s in all"
if [ "$total_skipped" -gt 0 ]; then
  echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
else
  echo "$total_passed passed, $total_failed failed"
fi
[ "$total_failed" -eq 0 ]
