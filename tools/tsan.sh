#!/bin/sh
# `make tsan`: spec/threads/host.c and openai.core built with
# -fsanitize=thread (BUILD_DIR/host, BUILD_DIR/openai/core.so, built by the
# Makefile), run against one mock API server started here.
#
#   sh tools/tsan.sh [BUILD_DIR] [host options...]
#
# Default load: 8 threads, each with its own lua_State, 1000 retrieves and
# 50 streamed creates per thread. Host options (e.g. --retrieves 100) are
# passed on. The mock runs natively (it is pure Lua + luv; ThreadSanitizer
# is linked into the host only) and watches this script's pid.
#
# ThreadSanitizer writes its reports to BUILD_DIR/logs/tsan.<pid>;
# tools/asan-report.lua counts them. tools/tsan.supp may only name code
# that is provably not ours. Exit status non-zero on any report, on any
# failed call, or when the totals are not exact.
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)
build=${1:-build/tsan}
[ $# -gt 0 ] && shift
case "$build" in /*) ;; *) build="$root/$build" ;; esac
host="$build/host"
module="$build/openai/core.so"
for f in "$host" "$module"; do
  [ -f "$f" ] || { echo "tsan: $f is missing (run make tsan)" >&2; exit 2; }
done

logs="$build/logs"
rm -rf "$logs"
mkdir -p "$logs"
key="sk-threads-$$"

lua5.4 mock/server.lua --port 0 --api-key "$key" --parent-pid $$ \
  > "$build/mock.out" 2> "$build/mock.err" < /dev/null &
mock_pid=$!
trap 'kill -TERM "$mock_pid" 2>/dev/null' EXIT INT TERM
base_url=""
tries=0
while [ -z "$base_url" ] && [ "$tries" -lt 200 ]; do
  base_url=$(sed -n '1s|^\(http://.*\)$|\1|p' "$build/mock.out" 2>/dev/null)
  [ -n "$base_url" ] && break
  kill -0 "$mock_pid" 2>/dev/null || break
  tries=$((tries + 1))
  sleep 0.05
done
[ -n "$base_url" ] || { echo "tsan: the mock server did not start:" >&2; cat "$build/mock.err" >&2; exit 2; }
echo "tsan: mock at $base_url (pid $mock_pid)"

# halt_on_error=0: every race is reported, not only the first.
# second_deadlock_stack=1: both stacks of a lock-order inversion.
symbolizer=$(command -v llvm-symbolizer || ls /usr/lib/llvm-*/bin/llvm-symbolizer 2>/dev/null | tail -n 1)
TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:history_size=4:log_path=$logs/tsan:suppressions=$root/tools/tsan.supp:print_suppressions=0${symbolizer:+:external_symbolizer_path=$symbolizer}"
export TSAN_OPTIONS
# ThreadSanitizer of LLVM 14 expects the memory layout of a kernel with
# 28-bit mmap randomisation; with more ("FATAL: ThreadSanitizer: unexpected
# memory mapping", newer kernels) it cannot start. setarch -R turns address
# randomisation off for the host only, which TSan does not need anyway.
norandom=""
if setarch "$(uname -m)" -R true 2>/dev/null; then norandom="setarch $(uname -m) -R"; fi
started=$(date +%s)
timeout 1800 $norandom "$host" --base-url "$base_url" --api-key "$key" --lua-dir "$root/lua" --cpath "$build/?.so" \
  --threads 8 --retrieves 1000 --streams 50 "$@" > "$build/host.out" 2>&1
host_status=$?
elapsed=$(( $(date +%s) - started ))
unset TSAN_OPTIONS
cat "$build/host.out"
stats=$(MOCK_URL="$base_url" lua5.4 -e '
  local http = require("socket.http")
  local body = http.request((os.getenv("MOCK_URL"):gsub("/v1$", "")) .. "/__mock/stats")
  io.write(body or "unavailable")' 2>/dev/null)
echo "tsan: mock stats $stats"
echo "tsan: host exit status $host_status after ${elapsed}s"
lua5.4 tools/asan-report.lua "$logs" "$module" tsan
report_status=$?
[ "$host_status" -eq 0 ] && [ "$report_status" -eq 0 ]
