#!/bin/sh
# Runs every busted spec under one runtime and ends with one line
# "N passed, M failed" (skipped specs are counted apart); or, with --times,
# shows where a suite run's time goes: each spec file run on its own
# (busted's start-up included), slowest first, then the sum.
#
#   sh tools/run-tests.sh [busted args...]              Lua 5.4 (make test)
#   LUA=luajit sh tools/run-tests.sh [busted args...]   lua5.1 lua5.2 lua5.3 lua5.4 luajit
#   LUA=luajit sh tools/run-tests.sh --times
#
# The module is the Makefile's build of that runtime (make LUA=...):
# build/openai/core.so for lua5.4, build/<LUA>/openai/core.so otherwise.
# Which spec directories run is .busted's choice, by runtime. Child
# processes the specs start run the same interpreter and module
# (OPENAI_SPEC_LUA, OPENAI_SPEC_CPATH: spec/helpers/util.lua). TAP output
# goes to build/test-<LUA>.tap.
cd "$(dirname "$0")/.." || exit 2
LUA=${LUA:-lua5.4}
case "$LUA" in
  lua5.1|lua5.2|lua5.3|lua5.4|luajit) ;;
  *) echo "run-tests: LUA must be one of lua5.1 lua5.2 lua5.3 lua5.4 luajit, not '$LUA'" >&2; exit 2 ;;
esac
if [ "$LUA" = lua5.4 ]; then build=build; else build=build/$LUA; fi
mkdir -p build
tap=build/test-$LUA.tap
if [ ! -f "$build/openai/core.so" ]; then
  echo "run-tests: $build/openai/core.so is missing (make LUA=$LUA)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
OPENAI_SPEC_LUA=$LUA
OPENAI_SPEC_CPATH=$build/?.so
export OPENAI_SPEC_LUA OPENAI_SPEC_CPATH

if [ "${1:-}" = --times ]; then
  out=$(mktemp)
  files=$(busted --lua="$LUA" -l 2>/dev/null | sed -n 's/^\(spec\/[^:]*_spec\.lua\):.*/\1/p' | sort -u)
  for f in $files; do
    start=$(date +%s.%N)
    busted --lua="$LUA" --cpath="$OPENAI_SPEC_CPATH" -o TAP "$f" > "$out" 2>&1
    end=$(date +%s.%N)
    printf '%7.2f s  %3d ok %3d not ok  %s\n' "$(echo "$end - $start" | bc)" \
      "$(grep -c '^ok ' "$out")" "$(grep -c '^not ok ' "$out")" "$f"
  done | sort -rn | awk -v lua="$LUA" '{ print; total += $1 } END { printf "%7.2f s  in all (%s)\n", total, lua }'
  rm -f "$out"
  exit 0
fi

busted --lua="$LUA" --cpath="$OPENAI_SPEC_CPATH" -o TAP "$@" > "$tap" 2>&1
busted_status=$?
lua5.4 tools/tap-summary.lua "$tap"
summary_status=$?
[ "$busted_status" -eq 0 ] && [ "$summary_status" -eq 0 ]
