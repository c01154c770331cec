#!/bin/sh
# `make asan`: the whole busted suite with openai.core built under
# AddressSanitizer + UndefinedBehaviorSanitizer (build/asan/openai/core.so,
# built by the Makefile before this runs).
#
#   sh tools/asan.sh [BUILD_DIR]
#
# How it runs:
# - lua5.4 is not instrumented, so the ASan runtime (which also carries the
#   UBSan handlers) is LD_PRELOADed. busted is started directly as
#   `lua5.4 /usr/bin/busted --ignore-lua`, not through the lua5.1 wrapper
#   that `busted --lua=lua5.4` would re-exec from.
# - LUA_CPATH_5_4 points at the ASan build. Lua 5.4 reads it before
#   LUA_CPATH, so the `lua5.4` subprocesses the specs start (with
#   LUA_CPATH=build/?.so, see spec/helpers/util.lua) load the instrumented
#   module too, and inherit the sanitizer environment.
# - The mock API server (mock/server.lua) runs under the runtime too:
#   it is pure Lua + luv, never loads openai.core, and was checked to start,
#   serve and exit cleanly with it (no reports). Keeping it out would take a
#   `lua5.4` shim first on PATH, and luarocks (install_spec) derives the Lua
#   prefix from the lua5.4 it finds on PATH, so that breaks a spec instead.
#   Should it ever report something, the report fails the run as "other".
# - The module's dependencies that have thread-local storage (gnutls,
#   p11-kit, ...) are preloaded too. lua_close() dlclose()s the module, and
#   with it those libraries; LeakSanitizer (clang 14 and gcc 12 runtimes
#   alike, on Debian 12's glibc) then crashes at exit while scanning their
#   stale dynamic TLS ("Tracer caught signal 11 ... LeakSanitizer has
#   encountered a fatal error"), which turns the exit code of every spec
#   subprocess that loaded openai.core into 1. Preloaded, their TLS is
#   static and they are never unloaded. The ASan build itself is linked
#   with -z nodelete (Makefile), so its frames stay symbolisable in leak
#   reports written at exit.
# - Leaks are checked in lua5.4 processes and the thread test host only
#   (see ASAN_OPTIONS below).
# - Every process writes its reports to build/asan/logs/asan.<pid>;
#   tools/asan-report.lua sorts them into ours (a frame in openai/core.so or
#   in src/) and others. LSan suppressions (tools/asan-lsan.supp) only name
#   code that is provably not ours.
#
# Exit status: non-zero when a report is attributable to the project, when
# the suite fails, or when an unexplained foreign report appears. The last
# line is busted's "N passed, M failed".
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)
build=${1:-build/asan}
[ $# -gt 0 ] && shift
case "$build" in /*) ;; *) build="$root/$build" ;; esac
module="$build/openai/core.so"
[ -f "$module" ] || { echo "asan: $module is missing (run make asan)" >&2; exit 2; }

arch=$(uname -m)
runtime=$(${SAN_CC:-clang} -print-file-name=libclang_rt.asan-$arch.so)
[ -f "$runtime" ] || { echo "asan: ASan runtime not found ($runtime)" >&2; exit 2; }
real_lua=$(command -v lua5.4) || { echo "asan: lua5.4 not found" >&2; exit 2; }

logs="$build/logs"
rm -rf "$logs"
mkdir -p "$logs"

preload="$runtime"
for lib in $(ldd "$module" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do
  case "$lib" in */libc.so.*|*/libm.so.*|*/libpthread.so.*|*/libdl.so.*) continue ;; esac
  if readelf -lW "$lib" 2>/dev/null | grep -q '^ *TLS '; then preload="$preload $lib"; fi
done

# abort_on_error=0: a memory error ends the process with exit code 1 (the
# spec or the suite fails) instead of a core dump.
# Allocation stacks use the fast (frame-pointer) unwinder by default:
# libcurl has no frame pointers, so a stack through it may stop short of our
# frames, which is why tools/asan-report.lua fails on ANY unsuppressed leak,
# ours or not. OPENAI_ASAN_SLOW_UNWIND=1 takes full DWARF stacks to see where
# such a leak comes from (much slower: json_spec's CPU-time check on 200 000
# nested arrays then fails, as it measures the unwinder, not the decoder).
unwind=1
[ "${OPENAI_ASAN_SLOW_UNWIND:-0}" = 1 ] && unwind=0
# Leak checking is switched on per binary: include_if_exists reads
# build/asan/options/<binary name> (%b), which exists for lua5.4 and for
# the thread test host only. The specs also run make, install, localedef,
# luarocks, cc ... with the runtime preloaded; their own exit-time leaks are
# not ours and would turn their exit codes into 1 and fail specs spuriously.
mkdir -p "$build/options"
echo "detect_leaks=1" > "$build/options/lua5.4"
echo "detect_leaks=1" > "$build/options/host" # build/threads/host (threads_spec)
# llvm-symbolizer: /usr/bin/llvm-symbolizer comes with the `llvm` package,
# clang-14 brings /usr/lib/llvm-14/bin/llvm-symbolizer only.
symbolizer=$(command -v llvm-symbolizer || ls /usr/lib/llvm-*/bin/llvm-symbolizer 2>/dev/null | tail -n 1)
ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1:log_path=$logs/asan:fast_unwind_on_malloc=$unwind:malloc_context_size=30${symbolizer:+:external_symbolizer_path=$symbolizer}:include_if_exists=$build/options/%b"
LSAN_OPTIONS="suppressions=$root/tools/asan-lsan.supp:print_suppressions=0${OPENAI_LSAN_EXTRA:+:$OPENAI_LSAN_EXTRA}"
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=0:log_path=$logs/asan"
export ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS

echo "asan: preload $preload"
# Check that a spec's subprocess (LUA_CPATH=build/?.so, as util.run_lua
# sets it) does load the instrumented module.
loaded=$(LUA_CPATH_5_4="$build/?.so;;" LUA_CPATH="build/?.so;;" LD_PRELOAD="$preload" "$real_lua" -e '
  require("openai.core")
  local maps = io.open("/proc/self/maps"):read("a")
  for line in maps:gmatch("[^\n]+") do
    local path = line:match("(/%S+/openai/core%.so)$")
    if path then io.write(path) break end
  end' 2>&1)
if [ "$loaded" != "$module" ]; then
  echo "asan: a subprocess loads '$loaded' instead of $module" >&2
  exit 2
fi
echo "asan: module  $module"
started=$(date +%s)
LUA_CPATH_5_4="$build/?.so;;" LD_PRELOAD="$preload" \
  "$real_lua" /usr/bin/busted --ignore-lua -o TAP --cpath="$build/?.so" "$@" \
  > "$build/test.tap" 2>&1
busted_status=$?
elapsed=$(( $(date +%s) - started ))

# Everything below runs without the sanitizer environment.
unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
grep -q 'ERROR: AddressSanitizer\|runtime error' "$build/test.tap" && {
  echo "asan: sanitizer output on the suite's stdout/stderr:" >&2
  grep -n 'ERROR: AddressSanitizer\|runtime error' "$build/test.tap" >&2
}
"$real_lua" tools/asan-report.lua "$logs" "$module"
report_status=$?
echo "asan: suite took ${elapsed}s"
"$real_lua" tools/tap-summary.lua "$build/test.tap"
summary_status=$?
[ "$busted_status" -eq 0 ] && [ "$summary_status" -eq 0 ] && [ "$report_status" -eq 0 ]
