#!/bin/sh
# The long checks, in sequence: make asan, make valgrind,
# make tsan, make fuzz FUZZ_SECONDS=15 (override with FUZZ_SECONDS=N), and
# the JSON fuzz targets built for Lua 5.1 (FUZZ_SECONDS_LUA51=10).
# Each step's output is shown as it runs and kept in build/ci-extra/<step>.log;
# the end is a timed summary. Exit status non-zero when any step failed
# (all steps run regardless).
#
#   sh tools/ci-extra.sh            (or: make ci-extra)
cd "$(dirname "$0")/.." || exit 2
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
FUZZ_SECONDS_LUA51=${FUZZ_SECONDS_LUA51:-10}
logs=build/ci-extra
mkdir -p "$logs"

summary=""
failed=""
total_start=$(date +%s)

# step NAME KEY-LINE-PATTERN command...
step() {
  name=$1
  pattern=$2
  shift 2
  echo "==== ci-extra: $name: $*"
  start=$(date +%s)
  { "$@" 2>&1; echo $? > "$logs/$name.status"; } | tee "$logs/$name.log"
  status=$(cat "$logs/$name.status" 2>/dev/null || echo 1)
  elapsed=$(( $(date +%s) - start ))
  key=$(grep -E "$pattern" "$logs/$name.log" | tail -n 6 | sed 's/^ */      /')
  if [ "$status" -eq 0 ]; then verdict=ok; else verdict="FAILED (exit $status)"; failed="$failed $name"; fi
  summary="$summary
  $(printf '%-12s %-18s %5ss' "$name" "$verdict" "$elapsed")
$key"
}

step asan '^asan: [0-9]+ log file|passed, [0-9]+ failed' make --no-print-directory asan
step valgrind '^valgrind: [0-9]+ error|^valgrind: suite took|passed, [0-9]+ failed' make --no-print-directory valgrind
step tsan '^total:|^tsan: [0-9]+ log file|^tsan: host exit' make --no-print-directory tsan
step fuzz '^  (json_decode|json_roundtrip|sse|http_head|url) +execs' make --no-print-directory fuzz FUZZ_SECONDS="$FUZZ_SECONDS"
# The JSON targets again on Lua 5.1, where numbers have no integer subtype
# and integers beyond 2^53 take the boxed path.
step fuzz-lua5.1 '^  (json_decode|json_roundtrip) +execs' make --no-print-directory fuzz LUA=lua5.1 \
  FUZZ_SECONDS="$FUZZ_SECONDS_LUA51" FUZZ_TARGETS="json_decode json_roundtrip"

echo "==== ci-extra: summary (total $(( $(date +%s) - total_start ))s)$summary"
if [ -n "$failed" ]; then
  echo "ci-extra: FAILED:$failed"
  exit 1
fi
echo "ci-extra: all passed"
