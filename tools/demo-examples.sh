#!/bin/sh
# The examples `make demo` runs, in order; $1 is "mock" or "real".
set -e
run() {
  echo
  echo "-- lua5.4 $*"
  lua5.4 "$@"
}
if [ "$1" = mock ]; then
  run examples/retrieve.lua chatcmpl-abc123
else
  # The real API has no completion of ours stored yet: retrieve one only
  # when COMPLETION_ID names it.
  [ -n "${COMPLETION_ID:-}" ] && run examples/retrieve.lua "$COMPLETION_ID"
fi
run examples/chat.lua "Write a haiku about Lua."
run examples/stored.lua
run examples/stream.lua "Count from one to ten in words."
