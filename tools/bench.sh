#!/bin/sh
# `make bench`: every benchmark, against the local mock. Figures are
# measured on this machine each time; nothing here is a pass/fail test.
cd "$(dirname "$0")/.." || exit 2
set -e
echo "== JSON codec (bench/json_bench.lua) =="
lua5.4 bench/json_bench.lua 100000 50
echo
echo "== 10 000 sequential retrieves (bench/retrieve_bench.lua) =="
lua5.4 bench/retrieve_bench.lua 10000
echo
echo "== a 10 000-chunk stream (bench/stream_bench.lua) =="
lua5.4 bench/stream_bench.lua 10000
