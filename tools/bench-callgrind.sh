#!/bin/sh
# `make bench-callgrind`: instructions per call (valgrind's callgrind), which
# unlike times hardly move with the load of a shared machine: compare two
# builds by these. Each workload of bench/callgrind_workload.lua runs twice,
# with N1 and N2 calls; (Ir(N2) - Ir(N1)) / (N2 - N1) is one call's count,
# start-up and set-up cancelled out. The retrieves go to a local nginx
# (tools/lib/servers.sh, its URL in $BENCH_BASE_URL); the floor rows are
# bench/floor.c (libcurl alone, no Lua) for reference. Decode and encode are
# counted for openai.json and for lua-cjson.
#
#   sh tools/bench-callgrind.sh     (make bench-callgrind)
#
# Counts repeat within about 0.5 % from run to run (Lua seeds its string
# hashes with the time, and the retrieves' reads depend on how the bytes
# arrive). The profiles of the N2 runs stay in build/bench/callgrind/ for
#   callgrind_annotate build/bench/callgrind/decode-large.out | head -40
# By hand, one workload (N = 20 calls, plus a warm-up and start-up):
#   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
#     lua5.4 bench/callgrind_workload.lua decode-large 20
#
# Environment: CALLGRIND_WORKLOADS (default: all), e.g. "decode-small encode-small".
cd "$(dirname "$0")/.." || exit 2
OUT=build/bench/callgrind
mkdir -p "$OUT" build/bench/nginx
[ -x build/bench/floor ] || make --no-print-directory bench-build >/dev/null || exit 1

. tools/lib/servers.sh
trap 'nginx_stop' EXIT
trap 'nginx_stop; exit 130' INT TERM

WORKLOADS=${CALLGRIND_WORKLOADS:-"floor-small floor-large retrieve-small retrieve-large tasks16-small decode-small cjson-decode-small encode-small cjson-encode-small decode-large cjson-decode-large encode-large cjson-encode-large"}

case "$WORKLOADS" in
  *floor*|*retrieve*|*tasks*) nginx_start build/bench/nginx 0 || exit 1 ;;
esac

# Instructions of one run: callgrind's "summary:" (or "totals:") line.
instructions() { # name n command...
  cg_name=$1; cg_n=$2; shift 2
  valgrind --tool=callgrind --callgrind-out-file="$OUT/$cg_name.$cg_n.out" "$@" \
    >"$OUT/$cg_name.$cg_n.log" 2>&1 || { echo "$cg_name failed: see $OUT/$cg_name.$cg_n.log" >&2; return 1; }
  sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$OUT/$cg_name.$cg_n.out" | head -n 1
}

export BENCH_BASE_URL="$NGINX_BASE"
: > "$OUT/results"
for w in $WORKLOADS; do
  case "$w" in
    floor-small) set -- build/bench/floor "$NGINX_BASE/chat/completions/chatcmpl-abc123" -n; n1=100; n2=600 ;;
    floor-large) set -- build/bench/floor "$NGINX_BASE/chat/completions/large" -n; n1=2; n2=12 ;;
    *-large) set -- lua5.4 bench/callgrind_workload.lua "$w"; n1=2; n2=12 ;;
    tasks16-small) set -- lua5.4 bench/callgrind_workload.lua "$w"; n1=96; n2=576 ;;
    *) set -- lua5.4 bench/callgrind_workload.lua "$w"; n1=100; n2=600 ;;
  esac
  a=$(instructions "$w" $n1 "$@" $n1) || continue
  b=$(instructions "$w" $n2 "$@" $n2) || continue
  mv "$OUT/$w.$n2.out" "$OUT/$w.out"
  rm -f "$OUT/$w.$n1.out"
  awk -v a="$a" -v b="$b" -v d=$((n2 - n1)) -v w="$w" 'BEGIN { printf "%s %.0f\n", w, (b - a) / d }' >> "$OUT/results"
  echo "$w done" >&2
done

# The project's count beside its anchor's: libcurl alone for a retrieve,
# lua-cjson for decode and encode (anchor / openai > 1: openai runs fewer).
echo "Instructions per call (callgrind), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown):"
echo
echo "| call | openai | anchor | the anchor's count | anchor / openai |"
echo "|---|--:|---|--:|--:|"
awk '{ ir[$1] = $2 }
  function row(label, ours, anchor, name) {
    if (!(ours in ir) && !(anchor in ir)) return
    printf "| %s | %s | %s | %s | %s |\n", label, (ours in ir) ? ir[ours] : "–", name,
      (anchor in ir) ? ir[anchor] : "–",
      (ours in ir && anchor in ir && ir[ours] > 0) ? ratio(ir[anchor] / ir[ours]) : "–"
  }
  function ratio(r) { return sprintf(r < 0.1 ? "%.3f×" : "%.2f×", r) }
  END {
    row("retrieve, golden (766 B)", "retrieve-small", "floor-small", "libcurl alone (floor)")
    row("retrieve, large (~205 KB)", "retrieve-large", "floor-large", "libcurl alone (floor)")
    row("retrieve, golden, 16 tasks in flight", "tasks16-small", "floor-small", "libcurl alone (floor)")
    # A retrieve less its decode: what the request path costs besides JSON.
    if ("retrieve-small" in ir && "decode-small" in ir) ir["path-small"] = ir["retrieve-small"] - ir["decode-small"]
    row("retrieve less decode, golden", "path-small", "floor-small", "libcurl alone (floor)")
    row("decode, golden", "decode-small", "cjson-decode-small", "cjson.decode")
    row("encode, golden", "encode-small", "cjson-encode-small", "cjson.encode")
    row("decode, large", "decode-large", "cjson-decode-large", "cjson.decode")
    row("encode, large", "encode-large", "cjson-encode-large", "cjson.encode")
  }' "$OUT/results"
