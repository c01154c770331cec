#!/bin/sh
# `make bench-openresty`: three ways of calling the API from inside nginx,
# side by side in one run, with ONE nginx worker (Debian's nginx and its Lua
# module, pinned to CPU $BENCH_CPU) whose location calls
# client.chat.completions.retrieve against a server that answers in 200 ms:
#   blocking       openai.new{ transport = "curl" } in the content handler
#   worker thread  the same libcurl call in nginx's thread pool
#                  (ngx.run_worker_thread, 8 threads)
#   cosocket       the automatic transport
# each with 8 and with 32 requests in flight, while a trivial location of
# the same worker is loaded too: the API location's rate, and the trivial
# location's rate and p99 latency. Anchors measured in the same run: the
# slow server alone (the most any way can reach) and the trivial location
# alone. Absolute numbers drift on a shared machine: read the ratios.
#
# The slow server is a second nginx (ngx.sleep(0.2), then the golden
# fixture) on the other CPU, with wrk. Both servers run from configs under
# build/bench/openresty/ on free 127.0.0.1 ports, one process each, stopped
# by their PIDs. The Lua part is bench/openresty/run.lua (the driver) and
# bench/openresty/app.lua (what the worker runs).
#
# Environment: BENCH_SECONDS (per measurement, default 8), BENCH_ROUNDS (2),
# BENCH_CPU (0), BENCH_LOAD_CPU (1), BENCH_TRIVIAL_CONNECTIONS (4).
cd "$(dirname "$0")/.." || exit 2
OUT=build/bench/openresty
mkdir -p "$OUT"
[ -f build/luajit/openai/core.so ] || { echo "build/luajit/openai/core.so is missing: run make bench-openresty" >&2; exit 2; }
nginx -V 2>&1 | grep -q -- '--with-threads' ||
  { echo "this nginx was built without threads (nginx -V): no thread pool to measure" >&2; exit 2; }

# The driver stops both servers itself; this covers it being interrupted.
# The pid files are the servers' own (removed before each start).
stop_servers() {
  for pidfile in "$OUT/app/nginx.pid" "$OUT/slow/nginx.pid"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  done
}
trap 'stop_servers' EXIT
trap 'stop_servers; exit 130' INT TERM

lua5.4 bench/openresty/run.lua "$OUT"
