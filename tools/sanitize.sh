#!/bin/sh
# `make asan`, `make tsan`, `make valgrind`: openai.core run under a
# sanitizer or under valgrind memcheck; every report is sorted into ours and
# foreign by tools/sanitizer-report.lua.
#
#   sh tools/sanitize.sh asan     [BUILD_DIR [busted args...]]   (default build/asan)
#   sh tools/sanitize.sh tsan     [BUILD_DIR [host options...]]  (default build/tsan)
#   sh tools/sanitize.sh valgrind [BUILD_DIR [busted args...]]   (default build)
#
# asan      the whole busted suite, with BUILD_DIR/openai/core.so built under
#           AddressSanitizer + UndefinedBehaviorSanitizer.
# tsan      BUILD_DIR/host (spec/threads/host.c) and BUILD_DIR/openai/core.so
#           built with -fsanitize=thread, against one mock API server started
#           here: 8 threads, each with its own lua_State, 1000 retrieves and
#           50 streamed creates per thread (host options, e.g. --retrieves
#           100, are passed on).
# valgrind  the whole busted suite, the busted process under memcheck, with
#           the plain build BUILD_DIR/openai/core.so.
# The Makefile builds what each needs before it calls this.
#
# Output goes to WORK (BUILD_DIR, or BUILD_DIR/valgrind for valgrind):
# WORK/logs/ the reports, one log per process; WORK/test.tap the suite's
# output (WORK/host.out the host's). The suppressions (tools/asan-lsan.supp,
# tools/tsan.supp, tools/valgrind.supp) may only name code that is provably
# not ours. The last lines: the report's count ("asan: N log file(s); ...",
# "tsan: N log file(s); ...", "valgrind: N error(s) and ..."), the run's
# time and exit status, and for the suite busted's "N passed, M failed".
#
# Exit status non-zero when a report is ours, when a foreign one is left
# unsuppressed, or when the suite or the host fails.
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)
tool=$1
case "$tool" in
  asan|tsan) build=build/$tool ;;
  valgrind) build=build ;;
  *) echo "usage: sh tools/sanitize.sh asan|tsan|valgrind [BUILD_DIR [args...]]" >&2; exit 2 ;;
esac
shift
[ $# -gt 0 ] && { build=$1; shift; }
case "$build" in /*) ;; *) build="$root/$build" ;; esac
module="$build/openai/core.so"
work=$build
[ "$tool" = valgrind ] && work="$build/valgrind"
logs="$work/logs"
missing=""
[ -f "$module" ] || missing=" $module"
[ "$tool" = tsan ] && [ ! -f "$build/host" ] && missing="$missing $build/host"
[ -z "$missing" ] || { echo "$tool:$missing missing (run make $tool)" >&2; exit 2; }
rm -rf "$logs"
mkdir -p "$logs"
# llvm-symbolizer: /usr/bin/llvm-symbolizer comes with the `llvm` package,
# clang-14 brings /usr/lib/llvm-14/bin/llvm-symbolizer only.
symbolizer=$(command -v llvm-symbolizer || ls /usr/lib/llvm-*/bin/llvm-symbolizer 2>/dev/null | tail -n 1)

case "$tool" in
asan)
  # - lua5.4 is not instrumented, so the ASan runtime (which also carries
  #   the UBSan handlers) is LD_PRELOADed. busted is started directly as
  #   `lua5.4 /usr/bin/busted --ignore-lua`, not through the lua5.1 wrapper
  #   that `busted --lua=lua5.4` would re-exec from.
  # - LUA_CPATH_5_4 points at the ASan build. Lua 5.4 reads it before
  #   LUA_CPATH, so the `lua5.4` subprocesses the specs start (with
  #   LUA_CPATH=build/?.so, see spec/helpers/util.lua) load the instrumented
  #   module too, and inherit the sanitizer environment.
  # - The mock API server (mock/server.lua) runs under the runtime too: it
  #   is pure Lua + luv, never loads openai.core, and was checked to start,
  #   serve and exit cleanly with it (no reports). Keeping it out would take
  #   a `lua5.4` shim first on PATH, and luarocks (install_spec) derives the
  #   Lua prefix from the lua5.4 it finds on PATH, so that breaks a spec
  #   instead. Should it ever report something, the report fails the run as
  #   "other".
  # - The module's dependencies that have thread-local storage (gnutls,
  #   p11-kit, ...) are preloaded too. lua_close() dlclose()s the module,
  #   and with it those libraries; LeakSanitizer (clang 14 and gcc 12
  #   runtimes alike, on Debian 12's glibc) then crashes at exit while
  #   scanning their stale dynamic TLS ("Tracer caught signal 11 ...
  #   LeakSanitizer has encountered a fatal error"), which turns the exit
  #   code of every spec subprocess that loaded openai.core into 1.
  #   Preloaded, their TLS is static and they are never unloaded. The ASan
  #   build itself is linked with -z nodelete (Makefile), so its frames stay
  #   symbolisable in leak reports written at exit.
  runtime=$(${SAN_CC:-clang} -print-file-name="libclang_rt.asan-$(uname -m).so")
  [ -f "$runtime" ] || { echo "asan: ASan runtime not found ($runtime)" >&2; exit 2; }
  preload="$runtime"
  for lib in $(ldd "$module" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do
    case "$lib" in */libc.so.*|*/libm.so.*|*/libpthread.so.*|*/libdl.so.*) continue ;; esac
    if readelf -lW "$lib" 2>/dev/null | grep -q '^ *TLS '; then preload="$preload $lib"; fi
  done
  # abort_on_error=0: a memory error ends the process with exit code 1 (the
  # spec or the suite fails) instead of a core dump.
  # Allocation stacks use the fast (frame-pointer) unwinder by default:
  # libcurl has no frame pointers, so a stack through it may stop short of
  # our frames, which is why tools/sanitizer-report.lua fails on ANY
  # unsuppressed leak, ours or not. OPENAI_ASAN_SLOW_UNWIND=1 takes full
  # DWARF stacks to see where such a leak comes from (much slower:
  # json_spec's CPU-time check on 200 000 nested arrays then fails, as it
  # measures the unwinder, not the decoder).
  unwind=1
  [ "${OPENAI_ASAN_SLOW_UNWIND:-0}" = 1 ] && unwind=0
  # Leak checking is switched on per binary: include_if_exists reads
  # BUILD_DIR/options/<binary name> (%b), which exists for lua5.4 and for
  # the thread test host only. The specs also run make, install, localedef,
  # luarocks, cc ... with the runtime preloaded; their own exit-time leaks
  # are not ours and would turn their exit codes into 1 and fail specs
  # spuriously.
  mkdir -p "$build/options"
  echo "detect_leaks=1" > "$build/options/lua5.4"
  echo "detect_leaks=1" > "$build/options/host" # build/threads/host (threads_spec)
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1:log_path=$logs/asan:fast_unwind_on_malloc=$unwind:malloc_context_size=30${symbolizer:+:external_symbolizer_path=$symbolizer}:include_if_exists=$build/options/%b"
  LSAN_OPTIONS="suppressions=$root/tools/asan-lsan.supp:print_suppressions=0${OPENAI_LSAN_EXTRA:+:$OPENAI_LSAN_EXTRA}"
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=0:log_path=$logs/asan"
  export ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
  run_lua() { LUA_CPATH_5_4="$build/?.so;;" LD_PRELOAD="$preload" lua5.4 "$@"; }

  echo "asan: preload $preload"
  # Check that a spec's subprocess (LUA_CPATH=build/?.so, as util.run_lua
  # sets it) does load the instrumented module.
  loaded=$(LUA_CPATH_5_4="$build/?.so;;" LUA_CPATH="build/?.so;;" LD_PRELOAD="$preload" lua5.4 -e '
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
  ;;
valgrind)
  # - Only the busted process runs under valgrind (--trace-children=no):
  #   the mock API server and the lua5.4 one-liners some specs start run
  #   natively, so their timing stays what the specs expect.
  # - The finalizer rounds (spec/finalizer_spec.lua) run in a child process
  #   of their own: under memcheck too (OPENAI_SPEC_VALGRIND), with their
  #   logs beside the suite's (the asan run loads the instrumented module in
  #   them as well).
  memcheck="valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,possible \
    --errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=40 --keep-debuginfo=yes \
    --fullpath-after= --suppressions=$root/tools/valgrind.supp --log-file=$logs/memcheck.%p.log"
  OPENAI_SPEC_VALGRIND=$memcheck
  export OPENAI_SPEC_VALGRIND
  run_lua() { $memcheck --track-origins=no --trace-children=no --gen-suppressions=all lua5.4 "$@"; }
  ;;
tsan)
  # The mock runs natively (it is pure Lua + luv; ThreadSanitizer is linked
  # into the host only) and watches this script's pid.
  . tools/lib/servers.sh
  trap 'mock_stop' EXIT
  trap 'exit 130' INT TERM
  key="sk-threads-$$"
  mock_start "$work/mock.out" --api-key "$key" --parent-pid $$ || exit 2
  echo "tsan: mock at $MOCK_URL (pid $MOCK_PID)"
  # halt_on_error=0: every race is reported, not only the first.
  # second_deadlock_stack=1: both stacks of a lock-order inversion.
  TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:history_size=4:log_path=$logs/tsan:suppressions=$root/tools/tsan.supp:print_suppressions=0${symbolizer:+:external_symbolizer_path=$symbolizer}"
  export TSAN_OPTIONS
  # ThreadSanitizer of LLVM 14 expects the memory layout of a kernel with
  # 28-bit mmap randomisation; with more ("FATAL: ThreadSanitizer:
  # unexpected memory mapping", newer kernels) it cannot start. setarch -R
  # turns address randomisation off for the host only, which TSan does not
  # need anyway.
  norandom=""
  if setarch "$(uname -m)" -R true 2>/dev/null; then norandom="setarch $(uname -m) -R"; fi
  ;;
esac

started=$(date +%s)
if [ "$tool" = tsan ]; then
  timeout 1800 $norandom "$build/host" --base-url "$MOCK_URL" --api-key "$key" --lua-dir "$root/lua" \
    --cpath "$build/?.so" --threads 8 --retrieves 1000 --streams 50 "$@" > "$work/host.out" 2>&1
else
  run_lua /usr/bin/busted --ignore-lua -o TAP --cpath="$build/?.so" "$@" > "$work/test.tap" 2>&1
fi
run_status=$?
elapsed=$(( $(date +%s) - started ))
# Everything below runs without the sanitizer environment.
unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS OPENAI_SPEC_VALGRIND

summary_status=0
case "$tool" in
asan)
  grep -q 'ERROR: AddressSanitizer\|runtime error' "$work/test.tap" && {
    echo "asan: sanitizer output on the suite's stdout/stderr:" >&2
    grep -n 'ERROR: AddressSanitizer\|runtime error' "$work/test.tap" >&2
  }
  ;;
valgrind)
  # A log without a summary is a fork that exec()ed a program at once
  # (io.popen, os.execute): valgrind stops following it there. Drop those.
  for log in "$logs"/memcheck.*.log; do
    grep -q "ERROR SUMMARY" "$log" || rm -f "$log"
  done
  ;;
tsan)
  cat "$work/host.out"
  stats=$(MOCK_URL="$MOCK_URL" lua5.4 -e '
    local http = require("socket.http")
    local body = http.request((os.getenv("MOCK_URL"):gsub("/v1$", "")) .. "/__mock/stats")
    io.write(body or "unavailable")' 2>/dev/null)
  echo "tsan: mock stats $stats"
  ;;
esac
lua5.4 tools/sanitizer-report.lua "$tool" "$module" "$logs"
report_status=$?
if [ "$tool" = tsan ]; then
  echo "tsan: host exit status $run_status after ${elapsed}s"
else
  note=""
  [ "$tool" = valgrind ] && note="; 99 = valgrind found errors"
  echo "$tool: suite took ${elapsed}s (busted exit status $run_status$note)"
  lua5.4 tools/tap-summary.lua "$work/test.tap"
  summary_status=$?
fi
[ "$run_status" -eq 0 ] && [ "$summary_status" -eq 0 ] && [ "$report_status" -eq 0 ]
