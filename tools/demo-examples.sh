#!/bin/sh
# The examples `make demo` runs, in order; $1 is "mock" or "real".
set -e
if [ "$1" = real ] && [ -z "${COMPLETION_ID:-}" ]; then
  echo "set COMPLETION_ID=chatcmpl-... (a completion stored with store=true) to retrieve it"
  exit 0
fi
echo "-- examples/retrieve.lua ${COMPLETION_ID:-chatcmpl-abc123}"
lua5.4 examples/retrieve.lua "${COMPLETION_ID:-chatcmpl-abc123}"
