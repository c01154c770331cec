#!/bin/sh
# `make valgrind`: the whole busted suite with the busted process (the
# lua5.4 that loads build/openai/core.so and runs every spec) under
# valgrind memcheck.
#
#   sh tools/valgrind.sh [busted args...]
#
# - Only the busted process runs under valgrind (--trace-children=no): the
#   mock API server and the lua5.4 one-liners some specs start run natively,
#   so their timing stays what the specs expect.
# - busted is started as `lua5.4 /usr/bin/busted --ignore-lua`, not through
#   the lua5.1 wrapper that `busted --lua=lua5.4` re-execs from.
# - tools/valgrind.supp silences what is provably not ours (ld.so, libc,
#   libcurl/gnutls/openssl global state); it never names our module.
# - tools/valgrind-report.lua counts the error and leak records of the log
#   and splits them into ours (a frame in openai/core.so or src/) and others.
#
# Exit status: non-zero when a record is ours, when an unsuppressed foreign
# error or definite leak remains, or when the suite fails. The last line is
# busted's "N passed, M failed".
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)
out="$root/build/valgrind"
module="$root/build/openai/core.so"
[ -f "$module" ] || { echo "valgrind: $module is missing (run make)" >&2; exit 2; }
rm -rf "$out"
mkdir -p "$out"

# The finalizer rounds (spec/finalizer_spec.lua) run in a child process of
# their own: under memcheck too, with their logs beside the suite's (the
# asan run loads the instrumented module in them as well).
OPENAI_SPEC_VALGRIND="valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,possible \
  --errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=40 --keep-debuginfo=yes \
  --fullpath-after= --suppressions=$root/tools/valgrind.supp --log-file=$out/memcheck.%p.log"
export OPENAI_SPEC_VALGRIND

started=$(date +%s)
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,possible \
  --errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=40 \
  --keep-debuginfo=yes --track-origins=no --trace-children=no --fullpath-after= \
  --suppressions="$root/tools/valgrind.supp" --gen-suppressions=all \
  --log-file="$out/memcheck.%p.log" \
  lua5.4 /usr/bin/busted --ignore-lua -o TAP --cpath="build/?.so" "$@" \
  > "$out/test.tap" 2>&1
busted_status=$?
elapsed=$(( $(date +%s) - started ))

# A log without a summary is a fork that exec()ed a program at once
# (io.popen, os.execute): valgrind stops following it there. Drop those.
for log in "$out"/memcheck.*.log; do
  grep -q "ERROR SUMMARY" "$log" || rm -f "$log"
done
lua5.4 tools/valgrind-report.lua "$module" "$out"/memcheck.*.log
report_status=$?
echo "valgrind: suite took ${elapsed}s (busted exit status $busted_status; 99 = valgrind found errors)"
lua5.4 tools/tap-summary.lua "$out/test.tap"
summary_status=$?
[ "$busted_status" -eq 0 ] && [ "$summary_status" -eq 0 ] && [ "$report_status" -eq 0 ]
