#!/bin/sh
# `make demo`: runs the examples against the bundled mock of the API, or
# against the real API when OPENAI_API_KEY is set (and OPENAI_BASE_URL is
# not). The mock is started on 127.0.0.1 and a free port and stopped by its
# PID. Stops at the first example that fails.
#
#   sh tools/demo.sh        (after make)
#
# The real API has no completion of ours stored yet: examples/retrieve.lua
# runs against it only when COMPLETION_ID names one.
cd "$(dirname "$0")/.." || exit 2
export LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;"
export LUA_CPATH="$PWD/build/?.so;;"

run() {
  echo
  echo "-- lua5.4 $*"
  lua5.4 "$@" || exit 1
}

if [ -n "${OPENAI_API_KEY:-}" ] && [ -z "${OPENAI_BASE_URL:-}" ]; then
  echo "== real API (OPENAI_API_KEY is set) =="
  [ -n "${COMPLETION_ID:-}" ] && run examples/retrieve.lua "$COMPLETION_ID"
else
  . tools/lib/servers.sh
  trap 'mock_stop' EXIT
  trap 'exit 130' INT TERM
  mkdir -p build/demo
  mock_start build/demo/mock.out || exit 1
  echo "== bundled mock of the API at $MOCK_URL (pid $MOCK_PID) =="
  OPENAI_BASE_URL=$MOCK_URL
  OPENAI_API_KEY=sk-mock-demo-key
  export OPENAI_BASE_URL OPENAI_API_KEY
  run examples/retrieve.lua chatcmpl-abc123
fi
run examples/chat.lua "Write a haiku about Lua."
run examples/stored.lua
run examples/stream.lua "Count from one to ten in words."
run examples/responses.lua "Say hello in three languages."
run examples/conversation.lua
