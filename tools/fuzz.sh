#!/bin/sh
# `make fuzz`: runs each libFuzzer target of fuzz/ (built by the Makefile
# into BUILD_DIR) for SECONDS seconds and prints libFuzzer's final stats.
#
#   sh tools/fuzz.sh BUILD_DIR SECONDS TARGET...
#
# Dictionaries: fuzz/<target>.dict when present (Lua is not instrumented,
# and a dictionary finds JSON's tokens sooner than coverage alone).
# Corpora: BUILD_DIR/corpus/<target> is the working corpus (it grows from
# run to run; new inputs land there), fuzz/corpus/<target> the seeds and
# regression inputs kept in git (read only here). A crash, leak, timeout or
# broken property is saved as BUILD_DIR/artifacts/<target>/crash-* etc.;
# copy it into fuzz/corpus/<target>/regress-<name> once fixed.
#
# Exit status non-zero when any target found something.
cd "$(dirname "$0")/.." || exit 2
build=${1:?usage: fuzz.sh BUILD_DIR SECONDS TARGET...}
seconds=${2:?usage: fuzz.sh BUILD_DIR SECONDS TARGET...}
shift 2
[ $# -gt 0 ] || { echo "fuzz: no targets" >&2; exit 2; }

# Leaks are checked (libFuzzer's -detect_leaks); UB already aborts
# (-fno-sanitize-recover), the options make the reports complete.
symbolizer=$(command -v llvm-symbolizer || ls /usr/lib/llvm-*/bin/llvm-symbolizer 2>/dev/null | tail -n 1)
ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:symbolize=1${symbolizer:+:external_symbolizer_path=$symbolizer}"
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${symbolizer:+:external_symbolizer_path=$symbolizer}"
export ASAN_OPTIONS UBSAN_OPTIONS

failed=""
summary=""
for target in "$@"; do
  bin="$build/$target"
  [ -x "$bin" ] || { echo "fuzz: $bin is missing (make fuzz-build)" >&2; exit 2; }
  corpus="$build/corpus/$target"
  artifacts="$build/artifacts/$target"
  log="$build/$target.log"
  mkdir -p "$corpus" "$artifacts" "fuzz/corpus/$target"
  dict=""
  [ -f "fuzz/$target.dict" ] && dict="-dict=fuzz/$target.dict"
  echo "fuzz: $target for ${seconds}s"
  "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=20 -rss_limit_mb=2048 $dict \
    -artifact_prefix="$artifacts/" "$corpus" "fuzz/corpus/$target" > "$log" 2>&1
  status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  added=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.* corp: \([^ ]*\).*/\1/p')
  line=$(printf '%-15s execs=%-10s exec/s=%-7s cov=%-5s ft=%-6s corpus=%-12s new=%-5s rss=%sMB' \
    "$target" "${execs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${added:-?}" "${rss:-?}")
  if [ "$status" -ne 0 ]; then
    failed="$failed $target"
    line="$line  FAILED (exit $status, log $log)"
    echo "fuzz: $target FAILED; the report:" >&2
    grep -E 'fuzz property broken|ERROR: |runtime error|SUMMARY|Test unit written|^    #[0-9]' "$log" | head -40 >&2
  fi
  echo "fuzz: done $line"
  summary="$summary
  $line"
done

echo "fuzz: summary (${seconds}s per target)$summary"
if [ -n "$failed" ]; then
  echo "fuzz: FAILED:$failed" >&2
  exit 1
fi
echo "fuzz: no findings"
