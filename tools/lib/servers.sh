# Sourced: the local HTTP servers of the demo, the sanitizer runs and the
# benchmarks, each on 127.0.0.1 and a free port, each stopped by its PID
# only. Run from the repository's root.
#
# The bundled mock of the API (mock/server.lua; tools/demo.sh, tools/sanitize.sh):
#   mock_start OUT [mock options...]  starts it (--port 0), its stdout in OUT
#                                     and its stderr in OUT.err; sets MOCK_PID
#                                     and MOCK_URL (http://127.0.0.1:PORT/v1)
#   mock_stop
#
# Debian's nginx as the benchmarks' server (tools/bench.sh,
# tools/bench-callgrind.sh), pinned to the CPU given, everything it writes
# under the directory given (config, pid file, logs, temp paths); one
# process (daemon off, master_process off):
#   nginx_start DIR CPU [sse]
#                         sets NGINX_PID, NGINX_PORT and NGINX_BASE
#                         (http://127.0.0.1:PORT/v1); serves
#                         GET /v1/chat/completions/chatcmpl-abc123  the golden fixture
#                         GET /v1/chat/completions/large            bench/large_document.lua
#                         and with sse (nginx's Lua module, 8192 connections,
#                         a listen backlog of 4096; raise `ulimit -n` first):
#                         POST /v1/chat/completions, GET /__streams  bench/sse_server.lua
#   nginx_stop
#   nginx_cpu_ns          CPU time nginx has used so far, in ns (/proc/PID/schedstat)
#   nginx_counts          "<connections accepted> <requests>" so far (stub_status;
#                         the status request itself counts as one of each)

MOCK_PID=""
MOCK_URL=""
NGINX_PID=""

# server_stop PID: kills a server started here and reaps it.
server_stop() {
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  return 0
}

mock_start() {
  mock_out=$1
  shift
  lua5.4 mock/server.lua --host 127.0.0.1 --port 0 "$@" > "$mock_out" 2> "$mock_out.err" < /dev/null &
  MOCK_PID=$!
  mock_tries=0
  # Its first line is its URL, once it listens.
  while [ "$mock_tries" -lt 200 ] && kill -0 "$MOCK_PID" 2>/dev/null; do
    MOCK_URL=$(sed -n '1s|^\(http://.*\)$|\1|p' "$mock_out" 2>/dev/null)
    [ -n "$MOCK_URL" ] && return 0
    mock_tries=$((mock_tries + 1))
    sleep 0.05
  done
  echo "the mock of the API did not start:" >&2
  cat "$mock_out.err" >&2
  mock_stop
  return 1
}

mock_stop() {
  server_stop "$MOCK_PID"
  MOCK_PID=""
}

nginx_start() {
  nginx_dir=$(cd "$1" && pwd) || return 1
  nginx_cpu=$2
  nginx_modules=""
  nginx_connections=1024
  nginx_sse=""
  nginx_sse_locations=""
  nginx_listen=""
  if [ "$3" = sse ]; then
    nginx_modules="load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;"
    nginx_connections=8192
    # A backlog for a thousand connects at once (nginx's default is 511:
    # the rest would wait for a SYN retransmission, a second later).
    nginx_listen=" backlog=4096"
    nginx_sse="lua_shared_dict streams 1m;"
    nginx_sse_locations="location = /v1/chat/completions { content_by_lua_file $(pwd)/bench/sse_server.lua; }
    location = /__streams { content_by_lua_file $(pwd)/bench/sse_server.lua; }"
  fi
  rm -rf "$nginx_dir/www" "$nginx_dir/logs" "$nginx_dir/tmp"
  mkdir -p "$nginx_dir/www/v1/chat/completions" "$nginx_dir/logs" "$nginx_dir/tmp"
  cp spec/fixtures/chatcmpl-abc123.json "$nginx_dir/www/v1/chat/completions/chatcmpl-abc123"
  lua5.4 bench/large_document.lua "$nginx_dir/www/v1/chat/completions/large" || return 1
  for nginx_try in 1 2 3; do
    # A free port: bind port 0, read it, close (nginx binds it right after).
    NGINX_PORT=$(lua5.4 -e 'local s = assert(require("socket").bind("127.0.0.1", 0))
      local _, port = s:getsockname() s:close() print(port)') || return 1
    cat > "$nginx_dir/nginx.conf" <<EOF
$nginx_modules
daemon off;
master_process off;
worker_processes 1;
pid $nginx_dir/nginx.pid;
error_log $nginx_dir/logs/error.log warn;
events { worker_connections $nginx_connections; }
http {
  access_log off;
  client_body_temp_path $nginx_dir/tmp/client_body;
  proxy_temp_path $nginx_dir/tmp/proxy;
  fastcgi_temp_path $nginx_dir/tmp/fastcgi;
  uwsgi_temp_path $nginx_dir/tmp/uwsgi;
  scgi_temp_path $nginx_dir/tmp/scgi;
  types { }
  default_type application/json;
  keepalive_timeout 300s;
  keepalive_requests 1000000000;
  sendfile on;
  tcp_nodelay on;
  open_file_cache max=16 inactive=600s;
  open_file_cache_valid 600s;
  $nginx_sse
  server {
    listen 127.0.0.1:$NGINX_PORT$nginx_listen;
    root $nginx_dir/www;
    location = /v1/chat/completions/chatcmpl-abc123 { }
    location = /v1/chat/completions/large { }
    location = /__status { stub_status; }
    $nginx_sse_locations
    location / { return 404; }
  }
}
EOF
    taskset -c "$nginx_cpu" nginx -p "$nginx_dir/" -e "$nginx_dir/logs/error.log" \
      -c "$nginx_dir/nginx.conf" >"$nginx_dir/logs/stdout.log" 2>&1 &
    NGINX_PID=$!
    NGINX_BASE="http://127.0.0.1:$NGINX_PORT/v1"
    # Ready when it answers; gone if the port was taken meanwhile.
    if lua5.4 -e "local port, pid = $NGINX_PORT, '$NGINX_PID'"' local socket = require("socket")
        for _ = 1, 200 do
          local c = socket.connect("127.0.0.1", port)
          if c then c:close() os.exit(0) end
          local f = io.open("/proc/" .. pid .. "/stat")
          local state = f and f:read("a"):match("%) (%a)")
          if f then f:close() end
          if state == nil or state == "Z" then break end
          socket.sleep(0.025)
        end
        os.exit(1)'; then
      return 0
    fi
    nginx_stop
  done
  echo "nginx did not start; see $nginx_dir/logs/error.log:" >&2
  cat "$nginx_dir/logs/error.log" "$nginx_dir/logs/stdout.log" >&2
  return 1
}

nginx_stop() {
  server_stop "$NGINX_PID"
  NGINX_PID=""
}

nginx_cpu_ns() {
  read -r nginx_ns _ < "/proc/$NGINX_PID/schedstat" && echo "$nginx_ns"
}

nginx_counts() {
  lua5.4 -e "local url = 'http://127.0.0.1:$NGINX_PORT/__status'"' local body = require("socket.http").request(url)
    local accepts, _, requests = assert(body, "no status"):match("\n%s*(%d+)%s+(%d+)%s+(%d+)")
    print(accepts, requests)'
}
