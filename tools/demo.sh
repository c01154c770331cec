#!/bin/sh
# `make demo`: runs the examples against the bundled mock of the API, or
# against the real API when OPENAI_API_KEY is set (and OPENAI_BASE_URL is
# not). The mock is started on a free loopback port and stopped by its PID.
cd "$(dirname "$0")/.." || exit 2
export LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;"
export LUA_CPATH="$PWD/build/?.so;;"

if [ -n "${OPENAI_API_KEY:-}" ] && [ -z "${OPENAI_BASE_URL:-}" ]; then
  echo "== real API (OPENAI_API_KEY is set) =="
  exec sh tools/demo-examples.sh real
fi

log=$(mktemp)
lua5.4 mock/server.lua --port 0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"' EXIT INT TERM
tries=0
until base=$(grep -m1 '^http://' "$log"); do
  tries=$((tries + 1))
  if [ "$tries" -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "the mock did not start:" >&2; cat "$log" >&2; exit 1
  fi
  sleep 0.1
done
echo "== bundled mock of the API at $base (pid $pid) =="
OPENAI_BASE_URL=$base OPENAI_API_KEY=sk-mock-demo-key sh tools/demo-examples.sh mock
