#!/bin/sh
# Where a suite run's time goes: each spec file of a runtime run on its own
# (busted's start-up included), slowest first, then the sum.
#
#   LUA=luajit sh tools/spec-times.sh     (default lua5.4; build it first)
cd "$(dirname "$0")/.." || exit 2
LUA=${LUA:-lua5.4}
if [ "$LUA" = lua5.4 ]; then build=build; else build=build/$LUA; fi
OPENAI_SPEC_LUA=$LUA
OPENAI_SPEC_CPATH=$build/?.so
export OPENAI_SPEC_LUA OPENAI_SPEC_CPATH
files=$(busted --lua="$LUA" -l 2>/dev/null | sed -n 's/^\(spec\/[^:]*_spec\.lua\):.*/\1/p' | sort -u)
out=$(mktemp)
for f in $files; do
  start=$(date +%s.%N)
  busted --lua="$LUA" --cpath="$OPENAI_SPEC_CPATH" -o TAP "$f" > "$out" 2>&1
  end=$(date +%s.%N)
  printf '%7.2f s  %3d ok %3d not ok  %s\n' "$(echo "$end - $start" | bc)" \
    "$(grep -c '^ok ' "$out")" "$(grep -c '^not ok ' "$out")" "$f"
done | sort -rn | awk '{ print; total += $1 } END { printf "%7.2f s  in all (%s)\n", total, ENVIRON["LUA"] }'
rm -f "$out"
