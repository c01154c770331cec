#!/bin/sh
# `make bench-concurrency` (and the last part of `make bench`): many calls
# in flight from one thread, the project against anchors side by side in
# one run. Figures are measured on this machine each time; nothing here is
# a pass/fail test.
#
#   sh tools/bench-concurrency.sh   (make bench-concurrency builds
#                                    build/bench/multi first)
#
# The server is Debian's nginx with its Lua module (tools/lib/servers.sh,
# `nginx_start DIR CPU sse`: 127.0.0.1, a free port, one process, stopped
# by its PID), config/logs under build/bench/concurrency/.
#
# 1. $BENCH_IN_FLIGHT (16) retrieves of the golden completion (766 B) in
#    flight at once, from one thread, for $BENCH_CONCURRENCY_SECONDS (1.5 s); the
#    rate is the calls completed over that time (the last calls started
#    before the end are waited for and counted). A first round of 16 calls,
#    not counted, opens the connections and checks the answer. Clients:
#      multi        build/bench/multi (bench/multi.c): libcurl's multi
#                   interface (socket interface + epoll, as the client's C
#                   core), 16 easy handles, each re-added as it completes,
#                   connections reused; NO JSON decode
#      multi+yajl   the same, each body parsed by yajl
#      multi+headers  the same as multi, each request carrying the header
#                   lines this client sends (bench/client_headers.lua):
#                   what they cost libcurl, apart from the client's own work
#      openai       bench/concurrent_bench.lua: 16 tasks (openai.spawn)
#                   sharing one client, each looping
#                   client.chat.completions.retrieve, driven by openai.poll
#      openai-node  bench/node/retrieve.mjs: the official Node SDK (npm
#                   package openai, pinned in bench/node/package-lock.json,
#                   installed with `npm ci` into bench/node/node_modules),
#                   16 async workers awaiting retrieve in a loop, maxRetries 0
#      node-fetch   the same script with --fetch: Node's own fetch and
#                   response.json(), no SDK (what the SDK is built on)
# 2. $BENCH_STREAMS (1000) chat completion streams open at once from one
#    thread: bench/sse_server.lua sends each a role chunk,
#    $BENCH_STREAM_CHUNKS (20) content chunks and a finish chunk,
#    $BENCH_STREAM_INTERVAL (0.05) s apart, then [DONE]; a shared-dict
#    counter of the handlers running records how many were open at once
#    (read from /__streams after each run). Clients:
#      openai       bench/concurrent_bench.lua streams: 1000 tasks, each
#                   chat.completions.create{stream = true} and stream:next()
#                   to the end (every chunk decoded and accumulated)
#      multi        build/bench/multi streams: 1000 POSTs in one multi
#                   handle, events counted, not parsed
#    Reported: streams/s and chunks/s over the whole batch (opening
#    included; the server's pacing alone takes 22 x 0.05 = 1.1 s a stream),
#    client CPU per chunk, peak RSS, and memory per stream: (RSS with all
#    streams open - RSS before opening any) / streams, and the Lua heap
#    (collectgarbage("count")) the same way.
# Peak RSS: VmHWM of /proc/self/status at the end of each C and Lua client,
# process.resourceUsage().maxRSS for Node.
#
# Pinning: nginx on CPU $BENCH_CPU (0), every client on CPU
# $BENCH_CLIENT_CPU (1), so that each client has a CPU to itself and the
# same server CPU; Node's helper threads share the client CPU. (On one
# core, both on CPU 0.) The open-file soft limit is raised to the hard
# limit for nginx and the clients.
# $BENCH_CONCURRENCY_ROUNDS (5) interleaved rounds (every client in turn,
# the order rotated each round); bench/concurrency_report.lua prints medians,
# and ratios as the median of the ratios within each round (steadier on a
# shared machine whose load drifts), as Markdown tables. With the defaults
# this takes about 80 s.
#
# Environment: BENCH_CONCURRENCY_SECONDS (1.5), BENCH_CONCURRENCY_ROUNDS (5), BENCH_CPU (0),
# BENCH_CLIENT_CPU (1), BENCH_IN_FLIGHT (16), BENCH_STREAMS (1000),
# BENCH_STREAM_CHUNKS (20), BENCH_STREAM_INTERVAL (0.05).
cd "$(dirname "$0")/.." || exit 2
SECONDS_PER_RUN=${BENCH_CONCURRENCY_SECONDS:-1.5}
ROUNDS=${BENCH_CONCURRENCY_ROUNDS:-5}
CPU=${BENCH_CPU:-0}
if [ "$(nproc)" -gt 1 ]; then CLIENT_CPU=${BENCH_CLIENT_CPU:-1}; else CLIENT_CPU=${BENCH_CLIENT_CPU:-0}; fi
IN_FLIGHT=${BENCH_IN_FLIGHT:-16}
STREAMS=${BENCH_STREAMS:-1000}
CHUNKS=${BENCH_STREAM_CHUNKS:-20}
INTERVAL=${BENCH_STREAM_INTERVAL:-0.05}
OUT=build/bench/concurrency
RESULTS=$OUT/results
ID=chatcmpl-abc123
mkdir -p "$OUT/nginx"
[ -x build/bench/multi ] || { echo "build/bench/multi is missing: run make bench-concurrency" >&2; exit 2; }
HEADERS=$OUT/client-headers.txt
lua5.4 bench/client_headers.lua > "$HEADERS" || { echo "cannot read the client's request headers" >&2; exit 1; }

hard=$(ulimit -H -n)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard" || exit 2
if [ "$hard" -lt $((STREAMS + 64)) ]; then
  echo "the open-file hard limit ($hard) is below $STREAMS streams: raise it, or set BENCH_STREAMS" >&2
  exit 2
fi

# openai-node, as the lock file pins it (npm ci only when it changed).
have_node=yes
if ! command -v npm >/dev/null 2>&1; then
  have_node=no
  echo "(node and npm not found: the openai-node anchor is left out)" >&2
elif [ ! -f bench/node/node_modules/.package-lock.json ] ||
     [ bench/node/package-lock.json -nt bench/node/node_modules/.package-lock.json ]; then
  (cd bench/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || {
    have_node=no
    echo "(npm ci in bench/node failed: the openai-node anchor is left out)" >&2
  }
fi
client_names="multi multi+yajl multi+headers openai"
[ "$have_node" = yes ] && client_names="$client_names openai-node node-fetch"

. tools/lib/servers.sh
. tools/lib/bench.sh
trap 'nginx_stop' EXIT
trap 'nginx_stop; exit 130' INT TERM

pinned() { taskset -c "$CLIENT_CPU" "$@"; }
run_retrieve() { # name
  case "$1" in
    multi) pinned build/bench/multi retrieve "$NGINX_BASE/chat/completions/$ID" "$SECONDS_PER_RUN" "$IN_FLIGHT" ;;
    multi+yajl) pinned build/bench/multi retrieve "$NGINX_BASE/chat/completions/$ID" "$SECONDS_PER_RUN" "$IN_FLIGHT" --yajl ;;
    multi+headers) pinned build/bench/multi retrieve "$NGINX_BASE/chat/completions/$ID" "$SECONDS_PER_RUN" "$IN_FLIGHT" \
      --headers "$HEADERS" ;;
    openai) pinned lua5.4 bench/concurrent_bench.lua retrieve "$NGINX_BASE" "$ID" "$SECONDS_PER_RUN" "$IN_FLIGHT" ;;
    openai-node) pinned node bench/node/retrieve.mjs "$NGINX_BASE" "$ID" "$SECONDS_PER_RUN" "$IN_FLIGHT" ;;
    node-fetch) pinned node bench/node/retrieve.mjs "$NGINX_BASE" "$ID" "$SECONDS_PER_RUN" "$IN_FLIGHT" --fetch ;;
  esac
}
run_streams() { # name
  case "$1" in
    openai) pinned lua5.4 bench/concurrent_bench.lua streams "$NGINX_BASE" "$STREAMS" "$CHUNKS" "$INTERVAL" ;;
    multi) pinned build/bench/multi streams "$NGINX_BASE/chat/completions" "$STREAMS" \
      --header "X-Bench-Chunks: $CHUNKS" --header "X-Bench-Interval: $INTERVAL" ;;
  esac
}
# "<open> <most open at once> <ended> <events sent>", then all set to 0.
stream_counts() {
  lua5.4 -e "local url = 'http://127.0.0.1:$NGINX_PORT/__streams?reset=1'"' print((assert(require("socket.http").request(url), "no /__streams")))'
}
debian=$(cat /etc/debian_version 2>/dev/null)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
machine="Debian $debian, $cpu_model, $(nproc) cores, Linux $(uname -r | cut -d- -f1)"
versions="nginx $(nginx -v 2>&1 | sed 's|.*nginx/||'), libcurl $(pkg-config --modversion libcurl),\
 yajl $(pkg-config --modversion yajl), $(lua5.4 -v 2>&1 | cut -d' ' -f1-2)"
[ "$have_node" = yes ] && versions="$versions, Node $(node --version), openai-node $(cd bench/node &&
  node -p 'require("./node_modules/openai/package.json").version')"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src lua 2>/dev/null || commit="$commit+changes"

nginx_start "$OUT/nginx" "$CPU" sse || exit 1
echo "== $IN_FLIGHT retrieves in flight from one thread; $STREAMS streams at once (nginx pid $NGINX_PID on CPU $CPU, clients on CPU $CLIENT_CPU, open files $(ulimit -n)) =="
: > "$RESULTS"
started=$(date +%s)
round=1
while [ "$round" -le "$ROUNDS" ]; do
  line="round $round, $IN_FLIGHT in flight:"
  for name in $(rotated "$round" $client_names); do
    if fields=$(measured 4 run_retrieve "$name"); then
      echo "retrieve $name $round $fields" >> "$RESULTS"
      set -- $fields
      line="$line $name $(rate "$1" "$2")"
    else
      echo "$name failed" >&2
    fi
  done
  echo "$line"
  line="round $round, $STREAMS streams:"
  for name in $(rotated "$round" openai multi); do
    stream_counts > /dev/null
    if [ "$name" = openai ]; then fields=9; else fields=6; fi
    if fields=$(measured "$fields" run_streams "$name"); then
      counts=$(stream_counts)
      echo "streams $name $round $fields $counts" >> "$RESULTS"
      set -- $fields
      line="$line $name $(rate "$1" "$3") (at once: $(echo "$counts" | cut -d' ' -f2))"
    else
      echo "$name streams failed" >&2
    fi
  done
  echo "$line"
  round=$((round + 1))
done
nginx_stop
echo "($(( $(date +%s) - started )) s)"
echo
lua5.4 bench/concurrency_report.lua "$RESULTS" "$(date +%Y-%m-%d)" "$machine" "$versions" "$commit" "$CPU" \
  "$CLIENT_CPU" "$SECONDS_PER_RUN" "$IN_FLIGHT" "$STREAMS" "$CHUNKS" "$INTERVAL"
