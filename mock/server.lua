-- Local mock of the OpenAI API for the specs.
--
--   lua5.4 mock/server.lua [--port N] [--host 127.0.0.1] [--api-key KEY]
--                               [--parent-pid PID]
--
-- Prints exactly one line, `http://127.0.0.1:PORT/v1`, once listening, then
-- serves until SIGTERM/SIGINT.  --parent-pid (used by spec/helpers/mock.lua)
-- makes the server exit when that process is gone, so a crashed test run
-- never leaves mocks behind.
--
-- Layout: mock/http.lua (HTTP layer), mock/api.lua (the /v1 routes and chat
-- completions), mock/responses.lua and mock/conversations.lua (the Responses
-- and Conversations APIs), mock/items.lua (their input items), mock/wire.lua
-- (error bodies and list pages of every resource), mock/store.lua (stored
-- completions), mock/script.lua (scripted responses),
-- mock/json.lua (codec that keeps raw numbers), mock/serve.lua (command line
-- and life cycle, shared with spec/hostile/server.lua).  This file wires them
-- together and owns the control endpoints under /__mock/.

-- Resolve our own directory so the script works from any working directory.
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = script_dir .. "/../?.lua;" .. package.path
local root = script_dir .. "/.."

local uv = require("luv")
local json = require("mock.json")
local http = require("mock.http")
local Api = require("mock.api")
local Store = require("mock.store")
local Script = require("mock.script")
local serve = require("mock.serve")

local function die(msg) serve.die("mock server", msg) end

local opts = serve.parse_args("mock server", arg or {}, {
  ["api-key"] = function(value) return value end,
})
opts.api_key = opts["api-key"]

---------------------------------------------------------------------------
-- State
---------------------------------------------------------------------------

local ok_fixtures, fixtures = pcall(Store.load_fixtures, root)
if not ok_fixtures then die(tostring(fixtures)) end

local api = Api.new({ api_key = opts.api_key, fixtures = fixtures })
local scripts = Script.new()

local state = {
  requests = 0,
  connections = 0,
  in_flight = 0,      -- API requests received whose response has not ended
  max_in_flight = 0,  -- the most of them at once since the last reset
  generation = 1, -- bumped by reset so old keep-alive connections count anew
  log = {},
}

-- x-request-id: a per-process prefix plus a counter (never reset, so ids
-- stay distinct across /__mock/reset).
local id_prefix = string.format("%08x%08x", uv.os_getpid() & 0xffffffff, os.time() & 0xffffffff)
local id_counter = 0
local function next_request_id()
  id_counter = id_counter + 1
  return string.format("req_%s%016x", id_prefix, id_counter)
end

local function reset()
  scripts:clear()
  api:reset()
  state.requests = 0
  state.connections = 0
  state.max_in_flight = state.in_flight
  state.generation = state.generation + 1
  state.log = {}
end

---------------------------------------------------------------------------
-- Control endpoints (no auth, not counted, not logged)
---------------------------------------------------------------------------

local function log_json()
  local out = json.array()
  for i, e in ipairs(state.log) do
    local headers = json.array()
    for j, h in ipairs(e.headers) do headers[j] = json.array({ h[1], h[2] }) end
    out[i] = json.obj(
      "method", e.method, "target", e.target, "path", e.path, "query", e.query,
      "headers", headers, "body", e.body, "connection", e.connection, "request_id", e.request_id)
  end
  return json.encode(out)
end

local function control(req, res)
  local route = req.method .. " " .. req.path
  if route == "POST /__mock/reset" then
    reset()
    return res:send(200, '{"ok":true}')
  elseif route == "POST /__mock/script" then
    local body = json.decode(req.body)
    local n, err
    if json.is_object(body) then
      n, err = scripts:append(body.responses)
    else
      err = "body must be a JSON object with 'responses'"
    end
    if not n then
      return res:send(400, json.encode(json.obj("error", json.obj("message", err))))
    end
    return res:send(200, json.encode(json.obj("queued", n)))
  elseif route == "GET /__mock/stats" then
    return res:send(200, json.encode(json.obj("requests", state.requests, "connections", state.connections,
      "in_flight", state.in_flight, "max_in_flight", state.max_in_flight)))
  elseif route == "GET /__mock/requests" then
    return res:send(200, log_json())
  end
  res:send(404, json.encode(json.obj("error", json.obj(
    "message", string.format("Invalid URL (%s %s)", req.method, req.path),
    "type", "invalid_request_error", "param", json.null, "code", json.null))))
end

---------------------------------------------------------------------------
-- Request entry point
---------------------------------------------------------------------------

local function handle(req, res)
  if req.path == "/__mock" or req.path:sub(1, 8) == "/__mock/" then
    return control(req, res)
  end

  -- Everything else is an API request: counted, logged, scriptable.
  state.requests = state.requests + 1
  state.in_flight = state.in_flight + 1
  if state.in_flight > state.max_in_flight then state.max_in_flight = state.in_flight end
  req.in_flight = true
  local conn = req.conn
  if conn.mock_generation ~= state.generation then
    state.connections = state.connections + 1
    conn.mock_generation = state.generation
    conn.mock_number = state.connections
  end
  state.log[#state.log + 1] = {
    method = req.method, target = req.target, path = req.path, query = req.query,
    headers = req.headers, body = req.body, connection = conn.mock_number, request_id = req.request_id,
  }

  local r = scripts:take(req)
  if r then
    return Script.play(r, req, res, function() api:handle(req, res) end)
  end
  api:handle(req, res)
end

---------------------------------------------------------------------------
-- Start
---------------------------------------------------------------------------

local server, err = http.new_server({
  host = opts.host,
  port = opts.port,
  handler = handle,
  next_request_id = next_request_id,
  on_response_end = function(req)
    if req.in_flight then state.in_flight = state.in_flight - 1 end
  end,
  -- Per-request failures are contained by the HTTP layer (and reported in
  -- the 500 body); stderr is kept for fatal errors unless MOCK_DEBUG is set.
  on_error = function(e)
    if os.getenv("MOCK_DEBUG") then io.stderr:write("mock server: request failed: ", tostring(e), "\n") end
  end,
})
if not server then die("cannot listen on " .. opts.host .. ":" .. opts.port .. ": " .. tostring(err)) end

serve.run(opts, server.port, server.close_all)
