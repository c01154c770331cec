#!/bin/sh
# `make bench`: the project against anchors, side by side in one run. Figures
# are measured on this machine each time; nothing here is a pass/fail test,
# and nothing here runs during `make test`.
#
#   sh tools/bench.sh     (make bench builds build/bench/floor first)
#
# 1. Retrieves over HTTP from a local nginx (tools/lib/servers.sh: Debian's
#    nginx on 127.0.0.1 and a free port, config/logs/pid under build/bench/),
#    of the golden completion (766 B) and of a ~205 KB completion with
#    logprobs (bench/large_document.lua), by
#      floor       build/bench/floor (bench/floor.c): libcurl alone, one easy
#                  handle, no decode; the least a client can do per call
#      floor+yajl  the same, and the body parsed by yajl (no Lua)
#      floor+headers  the floor sending the request headers this client
#                  sends (bench/client_headers.lua): what they cost libcurl
#                  and nginx, apart from the client's own work
#      openai      bench/retrieve_bench.lua: client.chat.completions.retrieve
#      socket.http bench/http_socket.lua: LuaSocket + lua-cjson, Lua 5.4
#      lua-curl    bench/http_luacurl.lua: Lua-cURL + lua-cjson, Lua 5.1
#      lua-curl+headers  the same, sending this client's request headers
#    nginx and every client on one CPU (taskset -c $BENCH_CPU), so the other
#    core and its noise help or hurt no client more than another; $BENCH_ROUNDS
#    interleaved rounds (every client in turn, the order rotated each round)
#    of $BENCH_SECONDS per client and body; bench/report.lua prints medians
#    and ratios as a Markdown table.
# 2. The JSON codecs, openai.json against lua-cjson (bench/json_bench.lua).
# 3. A 10 000-chunk stream from the bundled mock (bench/stream_bench.lua).
# 4. (`make bench` runs it after this script) many calls from one thread:
#    16 retrieves in flight and 1 000 streams at once, against curl-multi
#    and openai-node: tools/bench-concurrency.sh, alone `make bench-concurrency`.
#
# Environment: BENCH_SECONDS (default 1.5), BENCH_ROUNDS (3), BENCH_CPU (0),
# BENCH_JSON_SECONDS (0.6).
#
# Deterministic instruction counts instead of times: `make bench-callgrind`
# (tools/bench-callgrind.sh), or by hand, e.g.
#   valgrind --tool=callgrind --callgrind-out-file=build/bench/cg.out \
#     lua5.4 bench/callgrind_workload.lua decode-large 20
#   callgrind_annotate build/bench/cg.out | head -40
cd "$(dirname "$0")/.." || exit 2
SECONDS_PER_RUN=${BENCH_SECONDS:-1.5}
ROUNDS=${BENCH_ROUNDS:-3}
CPU=${BENCH_CPU:-0}
JSON_SECONDS=${BENCH_JSON_SECONDS:-0.6}
OUT=build/bench
RESULTS=$OUT/http.results
mkdir -p "$OUT/nginx"
[ -x "$OUT/floor" ] || { echo "build/bench/floor is missing: run make bench" >&2; exit 2; }

. tools/lib/servers.sh
. tools/lib/bench.sh
trap 'nginx_stop' EXIT
trap 'nginx_stop; exit 130' INT TERM

# The clients, by name; run_client runs one for a body, pinned to $CPU.
have_luacurl=yes
if ! lua5.1 -e 'require("curl") require("cjson") require("socket")' 2>/dev/null; then
  have_luacurl=no
  echo "(lua-curl + lua-cjson for Lua 5.1 not found: that anchor is left out)" >&2
fi
client_names="floor floor+yajl floor+headers openai socket.http lua-curl lua-curl+headers"
[ "$have_luacurl" = yes ] || client_names="floor floor+yajl floor+headers openai socket.http"
HEADERS=$OUT/client-headers.txt
lua5.4 bench/client_headers.lua > "$HEADERS" || { echo "cannot read the client's request headers" >&2; exit 1; }

run_client() { # name url completion-id expected-id
  case "$1" in
    floor) taskset -c "$CPU" "$OUT/floor" "$2" "$SECONDS_PER_RUN" ;;
    floor+yajl) taskset -c "$CPU" "$OUT/floor" "$2" "$SECONDS_PER_RUN" --yajl ;;
    floor+headers) taskset -c "$CPU" "$OUT/floor" "$2" "$SECONDS_PER_RUN" --headers "$HEADERS" ;;
    openai) taskset -c "$CPU" lua5.4 bench/retrieve_bench.lua "$NGINX_BASE" "$3" "$SECONDS_PER_RUN" ;;
    socket.http) taskset -c "$CPU" lua5.4 bench/http_socket.lua "$2" "$SECONDS_PER_RUN" "$4" ;;
    lua-curl) taskset -c "$CPU" lua5.1 bench/http_luacurl.lua "$2" "$SECONDS_PER_RUN" "$4" ;;
    lua-curl+headers) taskset -c "$CPU" lua5.1 bench/http_luacurl.lua "$2" "$SECONDS_PER_RUN" "$4" "$HEADERS" ;;
  esac
}

# Machine and versions, for the table's heading.
debian=$(cat /etc/debian_version 2>/dev/null)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
machine="Debian $debian, $cpu_model, $(nproc) cores, Linux $(uname -r | cut -d- -f1)"
versions="nginx $(nginx -v 2>&1 | sed 's|.*nginx/||'), libcurl $(pkg-config --modversion libcurl),\
 yajl $(pkg-config --modversion yajl), $(lua5.4 -v 2>&1 | cut -d' ' -f1-2),\
 lua-cjson $(lua5.4 -e 'print(require("cjson")._VERSION)')"
[ "$have_luacurl" = yes ] && versions="$versions, $(lua5.1 -v 2>&1 | cut -d' ' -f1-2), Lua-cURL $(lua5.1 -e 'print(require("curl")._VERSION)')"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src lua 2>/dev/null || commit="$commit+changes"

echo "== retrieves over HTTP from a local nginx, all on CPU $CPU ($ROUNDS rounds x ${SECONDS_PER_RUN} s per client and body) =="
nginx_start "$OUT/nginx" "$CPU" || exit 1
echo "nginx pid $NGINX_PID on $NGINX_BASE"
: > "$RESULTS"
started=$(date +%s)
round=1
while [ "$round" -le "$ROUNDS" ]; do
  for body in small large; do
    if [ "$body" = small ]; then id=chatcmpl-abc123; expected=chatcmpl-abc123
    else id=large; expected=chatcmpl-large; fi
    url="$NGINX_BASE/chat/completions/$id"
    line="round $round, $body:"
    for name in $(rotated "$round" $client_names); do
      if fields=$(measured 3 run_client "$name" "$url" "$id" "$expected"); then
        echo "$name $body $round $fields" >> "$RESULTS"
        set -- $fields
        line="$line $name $(rate "$1" "$2")"
      else
        echo "$name ($body) failed" >&2
      fi
    done
    echo "$line"
  done
  round=$((round + 1))
done
nginx_stop
echo "($(( $(date +%s) - started )) s)"
echo
lua5.4 bench/report.lua "$RESULTS" "$(date +%Y-%m-%d)" "$machine" "$versions" "$commit" "$CPU" "$SECONDS_PER_RUN"

echo
echo "== JSON codec, openai.json vs lua-cjson (bench/json_bench.lua), on CPU $CPU =="
taskset -c "$CPU" lua5.4 bench/json_bench.lua "$JSON_SECONDS" "$ROUNDS"
echo
echo "== a 10 000-chunk stream from the bundled mock (bench/stream_bench.lua) =="
lua5.4 bench/stream_bench.lua 10000
