-- The driver of `make bench-openresty` (tools/bench-openresty.sh runs it
-- with lua5.4 from the repository's root; that script says what is
-- measured):
--   lua5.4 bench/openresty/run.lua OUT_DIR
-- Environment: BENCH_SECONDS (per measurement, default 8), BENCH_ROUNDS (2),
-- BENCH_CPU (the worker's CPU, default 0), BENCH_LOAD_CPU (the slow
-- server's and wrk's, default 1, or 0 on a single CPU),
-- BENCH_TRIVIAL_CONNECTIONS (4).
local process = require("spec.helpers.process")
local mock = require("spec.helpers.mock")
local socket = require("socket")
local http = require("socket.http")

local OUT = assert(arg[1], "usage: run.lua OUT_DIR")
local SECONDS = tonumber(os.getenv("BENCH_SECONDS")) or 8
local ROUNDS = tonumber(os.getenv("BENCH_ROUNDS")) or 2
local CPU = os.getenv("BENCH_CPU") or "0"
local LOAD_CPU = os.getenv("BENCH_LOAD_CPU") or (tonumber(process.run("nproc"):match("%d+")) > 1 and "1" or "0")
local TRIVIAL_CONNECTIONS = tonumber(os.getenv("BENCH_TRIVIAL_CONNECTIONS")) or 4
local IN_FLIGHT = { 8, 32 }
local DELAY = 0.2 -- seconds the slow server takes per answer
local THREADS = 8 -- nginx's thread pool
local ID = "chatcmpl-abc123"
local MODULES = { "/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so" }

local ROOT = process.run("pwd"):gsub("%s+$", "")
local q = process.shell_quote

local WAYS = {
  { key = "blocking", label = "blocking: `transport = \"curl\"` in the handler" },
  { key = "thread", label = ("worker thread: libcurl in `ngx.run_worker_thread` (%d threads)"):format(THREADS) },
  { key = "cosocket", label = "cosocket: the automatic transport" },
}

local function append(list, items)
  for _, item in ipairs(items) do list[#list + 1] = item end
end

---------------------------------------------------------------------------
-- The two nginx instances: one process each (master_process off), on a
-- free port, everything under OUT/<name>/, stopped by their PIDs.

local servers = {}

local function config(dir, port, parts)
  local lines = {}
  for _, module in ipairs(MODULES) do lines[#lines + 1] = "load_module " .. module .. ";" end
  append(lines, { "daemon off;", "master_process off;", "worker_processes 1;",
                  "pid " .. dir .. "/nginx.pid;", "error_log " .. dir .. "/error.log warn;" })
  append(lines, parts.main or {})
  append(lines, { "events { worker_connections 4096; }", "http {", "  access_log off;",
                  "  default_type application/json;",
                  -- wrk's connections stay open for the whole run: a reconnect
                  -- would be the load generator's cost, not the thing measured.
                  "  keepalive_timeout 300s;", "  keepalive_requests 1000000000;" })
  for _, temp in ipairs { "client_body", "proxy", "fastcgi", "uwsgi", "scgi" } do
    lines[#lines + 1] = ("  %s_temp_path %s/tmp/%s;"):format(temp, dir, temp)
  end
  for _, line in ipairs(parts.http or {}) do lines[#lines + 1] = "  " .. line end
  append(lines, { "  server {", "    listen 127.0.0.1:" .. port .. ";", "    root " .. dir .. "/www;",
                  "    location = /nginx_status { stub_status; }" })
  for _, line in ipairs(parts.server) do lines[#lines + 1] = "    " .. line end
  append(lines, { "  }", "}" })
  return table.concat(lines, "\n") .. "\n"
end

-- parts: config lines for the main context (main), the http block (http)
-- and the server block (server); files: path under www/ -> content.
local function start(name, cpu, parts, files)
  local dir = ROOT .. "/" .. OUT .. "/" .. name
  process.remove_dir(dir)
  assert(os.execute("mkdir -p " .. q(dir .. "/tmp") .. " " .. q(dir .. "/www")))
  for path, content in pairs(files or {}) do
    assert(os.execute("mkdir -p " .. q((dir .. "/www/" .. path):match("^(.*)/"))))
    process.write_file(dir .. "/www/" .. path, content)
  end
  for _ = 1, 3 do
    os.remove(dir .. "/nginx.pid") -- a killed attempt's
    local port = mock.free_port()
    process.write_file(dir .. "/nginx.conf", config(dir, port, parts))
    -- taskset execs nginx: the PID spawned is nginx's.
    local pid = assert(process.spawn(("taskset -c %s nginx -p %s -e %s -c %s >%s 2>&1 </dev/null"):format(
      cpu, q(dir .. "/"), q(dir .. "/error.log"), q(dir .. "/nginx.conf"), q(dir .. "/stdout.log"))))
    local server = { name = name, dir = dir, pid = pid, url = "http://127.0.0.1:" .. port }
    servers[#servers + 1] = server
    -- nginx listens before it writes its pid file: wait for both.
    if process.wait_ready(pid, 10, function()
      return mock.accepts(port) and (process.read_file(dir .. "/nginx.pid") or ""):match("%d+") ~= nil
    end) then
      -- Stopped by this PID: it must be the nginx that answers.
      local written = tonumber((process.read_file(dir .. "/nginx.pid") or ""):match("%d+"))
      if written ~= pid then error(("%s's pid file says %s, not the PID started, %d"):format(name, written, pid)) end
      return server
    end
    process.stop(pid) -- the port was taken meanwhile, or nginx failed: try again
  end
  error(("nginx (%s) did not start:\n%s%s"):format(name, process.read_file(dir .. "/stdout.log") or "",
    process.read_file(dir .. "/error.log") or ""))
end

-- The nginx under test first: it may still be waiting on the slow one.
local function stop_all()
  for i = #servers, 1, -1 do process.stop(servers[i].pid) end
end

-- stub_status: connections accepted, requests, and those being read and
-- written now (its own request counts in each).
local function status(server)
  local body = assert(http.request(server.url .. "/nginx_status"), "no stub_status from " .. server.name)
  local accepted, _, requests = body:match("\n%s*(%d+)%s+(%d+)%s+(%d+)")
  local reading, writing = body:match("Reading: (%d+) Writing: (%d+)")
  return { accepted = tonumber(accepted), requests = tonumber(requests),
           reading = tonumber(reading), writing = tonumber(writing) }
end

-- Waits until the worker has no request left but the status one: a
-- blocked worker, or a busy thread pool, still owes answers to connections
-- wrk has closed, and those must not eat into the next measurement. (The
-- status request itself waits behind a blocked worker.)
local function drain(server)
  local deadline = socket.gettime() + 120
  repeat
    local now = status(server)
    if now.reading == 0 and now.writing <= 1 then return end
    socket.sleep(0.05)
  until socket.gettime() > deadline
  error(server.name .. " still has requests after 120 s")
end

-- CPU time (user + system, all its threads) a process has used, in s.
local function cpu_seconds(pid)
  local stat = assert(process.read_file("/proc/" .. pid .. "/stat"))
  local utime, stime = stat:match("%) %a" .. (" %S+"):rep(10) .. " (%d+) (%d+)")
  return (tonumber(utime) + tonumber(stime)) / 100 -- USER_HZ is 100 on Linux
end

---------------------------------------------------------------------------
-- Load: Debian's wrk. It keeps exactly N requests in flight (closed loop,
-- one per keep-alive connection), which is what "N in flight" means here;
-- it runs for a fixed time; --latency gives p99; one event-driven thread
-- holds 32 connections. (ab keeps no fixed time per request mix and reports
-- whole milliseconds; a Lua script of ours would cost more than nginx.)
-- --timeout is long: a blocked worker holds requests for seconds, and those
-- count as slow answers, not as lost ones. Each load connects, waits LEAD
-- (bench/openresty/wrk_lead.lua says why), then runs for SECONDS.
local LEAD = 1 -- second (wrk takes whole seconds)

local function wrk_command(url, connections, seconds)
  return ("taskset -c %s wrk -t1 -c%d -d%ds --timeout 60s --latency -s %s %s -- %d %d 2>&1"):format(
    LOAD_CPU, connections, seconds + LEAD, q(ROOT .. "/bench/openresty/wrk_lead.lua"), q(url), LEAD * 1000,
    connections)
end

local UNITS = { us = 0.001, ms = 1, s = 1000, m = 60000 }

local function parse_wrk(text)
  local answers = tonumber(text:match("(%d+) requests in"))
  if answers == nil then error("wrk failed:\n" .. text) end
  -- Per second of load: wrk's own rate counts the lead too.
  local result = { answers = answers, rate = answers / SECONDS,
                   non2xx = tonumber(text:match("Non%-2xx or 3xx responses:%s*(%d+)")) or 0 }
  local value, unit = text:match("\n%s*99%%%s+([%d.]+)(%a+)")
  -- No answer within the run: longer than the run, whatever wrk prints.
  result.p99 = result.answers > 0 and tonumber(value) * UNITS[unit] or math.huge
  local errors = 0
  for count in (text:match("Socket errors:([^\n]*)") or ""):gmatch("%d+") do errors = errors + tonumber(count) end
  result.socket_errors = errors
  return result
end

-- Runs the loads ({ url, connections }) at once for SECONDS (io.popen
-- starts each right away); returns their results in order, and the slow
-- server's and the worker's counters over that time.
local function measure(loads, slow, app)
  drain(app)
  local before, cpu0 = status(slow), cpu_seconds(app.pid)
  local pipes = {}
  for i, load in ipairs(loads) do pipes[i] = assert(io.popen(wrk_command(load.url, load.connections, SECONDS))) end
  local results = {}
  for i, pipe in ipairs(pipes) do
    results[i] = parse_wrk(pipe:read("a"))
    pipe:close()
  end
  local after = status(slow)
  return results, {
    slow_accepted = after.accepted - before.accepted - 1,
    slow_requests = after.requests - before.requests - 1,
    cpu = cpu_seconds(app.pid) - cpu0,
  }
end

---------------------------------------------------------------------------
-- The run

local function median(list)
  local copy = {}
  for i, value in ipairs(list) do copy[i] = value end
  table.sort(copy)
  local n = #copy
  if n % 2 == 1 then return copy[(n + 1) // 2] end
  return (copy[n // 2] + copy[n // 2 + 1]) / 2
end

local function versions()
  local function package(name) return (process.run("dpkg-query -W -f='${Version}' " .. name):gsub("%s+$", "")) end
  return ("nginx %s, lua-nginx-module %s, luajit2 %s, libcurl %s, wrk %s"):format(
    process.run("nginx -v"):match("nginx/(%S+)"), package("libnginx-mod-http-lua"), package("libluajit2-5.1-2"),
    process.run("pkg-config --modversion libcurl"):gsub("%s+$", ""), package("wrk"))
end

-- The rows: the anchors, then each way with each number in flight.
-- api: the API location (or the slow server itself); trivial: whether the
-- trivial location is loaded alongside.
local function rows_for(slow, app)
  local rows = {}
  for _, n in ipairs(IN_FLIGHT) do
    rows[#rows + 1] = { key = "direct" .. n, in_flight = n, api = slow.url .. "/v1/chat/completions/" .. ID,
                        label = "anchor: the slow server alone (wrk straight to it)" }
  end
  rows[#rows + 1] = { key = "idle", in_flight = 0, trivial = true, label = "anchor: the trivial location alone" }
  for _, way in ipairs(WAYS) do
    for _, n in ipairs(IN_FLIGHT) do
      rows[#rows + 1] = { key = way.key .. n, way = way.key, in_flight = n, api = app.url .. "/" .. way.key,
                          trivial = true, label = way.label }
    end
  end
  return rows
end

local function run_row(row, slow, app)
  local loads = {}
  if row.api then loads[#loads + 1] = { url = row.api, connections = row.in_flight } end
  if row.trivial then loads[#loads + 1] = { url = app.url .. "/trivial", connections = TRIVIAL_CONNECTIONS } end
  local results, extra = measure(loads, slow, app)
  local api, trivial = row.api and results[1], row.trivial and results[#results]
  local sample = { api = api and api.rate, api_p99 = api and api.p99, trivial = trivial and trivial.rate,
                   p99 = trivial and trivial.p99, answers = trivial and trivial.answers }
  local failed = 0
  for _, result in ipairs(results) do failed = failed + result.non2xx + result.socket_errors end
  sample.failed = failed
  local function shown(value, format) return value and format:format(value) or "-" end
  print(("  %-9s %2d in flight: API %7s/s (p99 %9s)  trivial %8s/s (p99 %10s)  slow server: %d conns, %d requests;"
    .. " worker CPU %3.0f%%%s"):format(row.way or row.key:gsub("%d+$", ""), row.in_flight,
    shown(sample.api, "%.1f"), shown(sample.api_p99, "%.1f ms"), shown(sample.trivial, "%.0f"),
    shown(sample.p99, "%.2f ms"), extra.slow_accepted, extra.slow_requests, 100 * extra.cpu / SECONDS,
    failed > 0 and ("  FAILED: %d non-2xx answers or socket errors"):format(failed) or ""))
  io.stdout:flush()
  return sample
end

local function main()
  local fixture = assert(process.read_file("spec/fixtures/" .. ID .. ".json"), "no golden fixture")

  -- The slow server answers after DELAY on a timer (ngx.sleep yields), so
  -- it holds any number in flight: its anchor rows show what it does alone.
  local slow = start("slow", LOAD_CPU, {
    server = { ("location = /v1/chat/completions/%s { access_by_lua_block { ngx.sleep(%s) } }"):format(ID, DELAY) },
  }, { ["v1/chat/completions/" .. ID] = fixture })
  local base_url = slow.url .. "/v1"

  -- The cosocket settings stay nginx's defaults (lua_socket_pool_size 30,
  -- lua_socket_keepalive_timeout 60 s): what a user gets.
  local locations = { 'location = /trivial { content_by_lua_block { ngx.print("ok") } }' }
  for _, way in ipairs(WAYS) do
    locations[#locations + 1] = ("location = /%s { content_by_lua_block { require(\"bench.openresty.app\").%s(%q) } }")
      :format(way.key, way.key, base_url)
  end
  local app = start("app", CPU, {
    main = { ("thread_pool openai_bench threads=%d;"):format(THREADS) },
    http = {
      ('lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;%s/?.lua;;";'):format(ROOT, ROOT, ROOT),
      ('lua_package_cpath "%s/build/luajit/?.so;;";'):format(ROOT),
    },
    server = locations,
  })

  -- Each way answers before anything is measured; then as many at once as
  -- the most in flight: ngx.run_worker_thread takes a Lua VM per call in
  -- flight (not per pool thread), creates it and requires the module in it
  -- on the worker's own thread the first time, and keeps it (with its
  -- client and connection) for later calls. The rows measure that steady
  -- state, not the first calls' start-up.
  for _, way in ipairs(WAYS) do
    local body, code = http.request(app.url .. "/" .. way.key)
    if code ~= 200 or not tostring(body):find(ID, 1, true) then
      error(("/%s answered %s: %s\n%s"):format(way.key, tostring(code), tostring(body),
        process.read_file(app.dir .. "/error.log") or ""))
    end
    local pipe = assert(io.popen(wrk_command(app.url .. "/" .. way.key, IN_FLIGHT[#IN_FLIGHT], 1)))
    pipe:read("a")
    pipe:close()
  end

  print(("nginx under test: pid %d on CPU %s; slow server: pid %d on CPU %s, with wrk; %d rounds of %d s per row")
    :format(app.pid, CPU, slow.pid, LOAD_CPU, ROUNDS, SECONDS))
  local rows = rows_for(slow, app)
  for round = 1, ROUNDS do
    print(("round %d"):format(round))
    -- Forward in odd rounds, backward in even ones: no row always follows
    -- the same one (the blocking rows leave the most behind).
    for i = 1, #rows do
      local row = rows[round % 2 == 1 and i or #rows + 1 - i]
      row.samples = row.samples or {}
      row.samples[#row.samples + 1] = run_row(row, slow, app)
    end
  end
  stop_all()
  local problems = {}
  for _, server in ipairs(servers) do
    for line in (process.read_file(server.dir .. "/error.log") or ""):gmatch("[^\n]+") do
      if line:find("%[error%]") or line:find("%[crit%]") or line:find("%[alert%]") or line:find("%[emerg%]") then
        problems[#problems + 1] = server.name .. ": " .. line
      end
    end
  end
  return rows, problems
end

local ok, rows, problems = xpcall(main, debug.traceback)
stop_all()
if not ok then
  io.stderr:write(tostring(rows), "\n")
  os.exit(1)
end

---------------------------------------------------------------------------
-- The table: medians over the rounds.

local by = {}
local failed = 0
for _, row in ipairs(rows) do
  by[row.key] = row
  for _, field in ipairs { "api", "trivial", "p99" } do
    local values = {}
    for _, sample in ipairs(row.samples) do values[#values + 1] = sample[field] end
    if #values > 0 then row[field] = median(values) end
  end
  row.answers = 0
  for _, sample in ipairs(row.samples) do
    row.answers = row.answers + (sample.answers or 0)
    failed = failed + sample.failed
  end
end

local function rate(value)
  if value == nil then return "–" end
  if value >= 1000 then return ("%.0f"):format(value) end
  return ("%.1f"):format(value)
end

local function latency(row)
  if row.p99 == nil then return "–" end
  local text
  if row.p99 == math.huge then text = ("> %d s"):format(SECONDS)
  elseif row.p99 >= 1000 then text = ("%.2f s"):format(row.p99 / 1000)
  elseif row.p99 >= 10 then text = ("%.0f ms"):format(row.p99)
  else text = ("%.1f ms"):format(row.p99) end
  -- Few answers: the p99 is about the slowest of them.
  if row.answers < 100 then text = ("%s (%d answers)"):format(text, row.answers) end
  return text
end

local function ratio(a, b)
  if a == nil or b == nil or b == 0 or a == math.huge or b == math.huge then return "–" end
  local r = a / b
  if r >= 10 then return ("%.0f×"):format(r) end
  if r >= 0.01 then return ("%.2f×"):format(r) end
  if r == 0 then return "0×" end
  return ("1/%.0f"):format(1 / r)
end

local commit = process.run("git rev-parse --short HEAD"):gsub("%s+$", "")
if not select(2, process.run("git diff --quiet HEAD -- src lua bench")) then commit = commit .. "+changes" end
local cpu_model = process.run("sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo"):match("[^\n]*")

print()
print(("One nginx worker (CPU %s) calling `client.chat.completions.retrieve` against a server that answers in"
  .. " %.0f ms (CPU %s), while %d more connections load a trivial location (`ngx.print(\"ok\")`) of the same worker;"
  .. " medians of %d rounds of %d s per row."):format(CPU, DELAY * 1000, LOAD_CPU, TRIVIAL_CONNECTIONS, ROUNDS, SECONDS))
print(("%s, %s, %d cores; %s; commit %s."):format(os.date("%Y-%m-%d"), cpu_model,
  tonumber(process.run("nproc"):match("%d+")), versions(), commit))
print()
print("| how the call is made | in flight | API req/s | trivial req/s | trivial p99 |")
print("| --- | ---: | ---: | ---: | ---: |")
for _, row in ipairs(rows) do
  print(("| %s | %d | %s | %s | %s |"):format(row.label, row.in_flight, rate(row.api), rate(row.trivial), latency(row)))
end
-- What the same row gave from round to round: differences among rows
-- smaller than that are the machine's noise, not the way of calling.
local function spread(row, field, show)
  local low, high = math.huge, -math.huge
  for _, sample in ipairs(row.samples) do
    low, high = math.min(low, sample[field]), math.max(high, sample[field])
  end
  return show(low) .. " to " .. show(high)
end
if ROUNDS > 1 then
  print()
  print(("Round to round in this run, the trivial location alone gave %s req/s (p99 %s ms); the slow server"
    .. " alone %s req/s with 32 in flight."):format(spread(by.idle, "trivial", rate),
    spread(by.idle, "p99", function(v) return ("%.1f"):format(v) end), spread(by.direct32, "api", rate)))
end
print()
print("Each row against the cosocket row with as many in flight | against the anchors"
  .. " (the slow server alone; the trivial location alone):")
for _, row in ipairs(rows) do
  if row.way then
    local cosocket, direct, idle = by["cosocket" .. row.in_flight], by["direct" .. row.in_flight], by.idle
    print(("  %-8s %2d in flight: API req/s %s, trivial req/s %s, trivial p99 %s | API req/s %s,"
      .. " trivial req/s %s, trivial p99 %s"):format(row.way, row.in_flight,
      ratio(row.api, cosocket.api), ratio(row.trivial, cosocket.trivial), ratio(row.p99, cosocket.p99),
      ratio(row.api, direct.api), ratio(row.trivial, idle.trivial), ratio(row.p99, idle.p99)))
  end
end
if failed > 0 then print(("\nFAILED: %d non-2xx answers or socket errors in all (see the rounds above)"):format(failed)) end
if #problems > 0 then
  print()
  print("nginx logged:")
  for _, line in ipairs(problems) do print("  " .. line) end
end
if failed > 0 or #problems > 0 then os.exit(1) end
