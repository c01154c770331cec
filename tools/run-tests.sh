#!/bin/sh
# Runs every busted spec under Lua 5.4 and ends with one line
# "N passed, M failed" (skipped specs are counted apart).
cd "$(dirname "$0")/.." || exit 2
mkdir -p build
busted --lua=lua5.4 -o TAP "$@" > build/test.tap 2>&1
busted_status=$?
lua5.4 tools/tap-summary.lua build/test.tap
summary_status=$?
[ "$busted_status" -eq 0 ] && [ "$summary_status" -eq 0 ]
