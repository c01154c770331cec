#!/bin/sh
# Runs every busted spec under one runtime and ends with one line
# "N passed, M failed" (skipped specs are counted apart).
#
#   sh tools/run-tests.sh [busted args...]              Lua 5.4 (make test)
#   LUA=luajit sh tools/run-tests.sh [busted args...]   lua5.1 lua5.2 lua5.3 lua5.4 luajit
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
busted --lua="$LUA" --cpath="$OPENAI_SPEC_CPATH" -o TAP "$@" > "$tap" 2>&1
busted_status=$?
lua5.4 tools/tap-summary.lua "$tap"
summary_status=$?
[ "$busted_status" -eq 0 ] && [ "$summary_status" -eq 0 ]
