-- Start, stop and steer the local OpenAI mock (spec/mock/server.lua) from
-- busted specs.
--
--   local mock = require("spec.helpers.mock")
--   local m = mock.start({ api_key = "sk-test-..." })
--   m.base_url, m.url, m.pid
--   m:reset()  m:script({ {status = 500}, {status = 200, json = {...}} })
--   m:stats()  m:requests()  m:header(req, "authorization")
--   m:stop()
--   mock.free_port()
--
-- Control calls go through luasocket with a short timeout so a wedged mock
-- fails a spec instead of hanging it.

local socket = require("socket")
local http = require("socket.http")
local ltn12 = require("ltn12")
local cjson = require("cjson")

local M = {}

local Mock = {}
Mock.__index = Mock

local CONTROL_TIMEOUT = 5 -- seconds
local START_TIMEOUT = 10

local process = require("spec.helpers.process")
local shell_quote, read_file, own_pid = process.shell_quote, process.read_file, process.own_pid

-- Directory of this file's repo: the specs run from the repo root, but do
-- not rely on it for locating the server script.
local function server_script()
  local src = debug.getinfo(1, "S").source
  local dir = src:match("^@(.*)/[^/]*$") or "spec/helpers"
  return dir .. "/../mock/server.lua"
end

-- A TCP port on 127.0.0.1 where nothing listens (at the time of the call).
function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- Start a mock.  opts: api_key (string), lua (interpreter, default lua5.4),
-- port (default 0 = any free port).
function M.start(opts)
  opts = opts or {}
  local out = os.tmpname()
  local err = os.tmpname()
  local args = { opts.lua or "lua5.4", server_script(), "--port", tostring(opts.port or 0) }
  if opts.api_key then
    args[#args + 1] = "--api-key"
    args[#args + 1] = opts.api_key
  end
  local parent = own_pid()
  if parent then
    args[#args + 1] = "--parent-pid"
    args[#args + 1] = tostring(parent)
  end
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = shell_quote(a) end
  local cmd = table.concat(quoted, " ") .. " >" .. shell_quote(out) .. " 2>" .. shell_quote(err) .. " </dev/null"
  local pid = assert(process.spawn(cmd), "mock: could not start " .. cmd)

  local self = setmetatable({ pid = pid, out_file = out, err_file = err }, Mock)
  local function listening()
    local line = (read_file(out) or ""):match("^(http://[^\n]+)\n")
    if line then
      self.base_url = line
      self.url = line:gsub("/v1$", "")
    end
    return line ~= nil
  end
  if not process.wait_ready(pid, START_TIMEOUT, listening) then
    local why = read_file(err) or ""
    self:stop()
    error("mock: server did not start: " .. why, 2)
  end
  return self
end

-- One control request; returns status, body.
function Mock:_request(method, path, body)
  local chunks = {}
  local _, status = http.request({
    url = self.url .. path,
    method = method,
    headers = body and { ["content-type"] = "application/json", ["content-length"] = tostring(#body) } or nil,
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(chunks),
    create = function()
      local s = socket.tcp()
      s:settimeout(CONTROL_TIMEOUT)
      return s
    end,
  })
  if type(status) ~= "number" then
    error("mock: control request " .. method .. " " .. path .. " failed: " .. tostring(status), 3)
  end
  local text = table.concat(chunks)
  if status ~= 200 then
    error("mock: control request " .. method .. " " .. path .. " -> " .. status .. " " .. text, 3)
  end
  return status, text
end

function Mock:reset()
  self:_request("POST", "/__mock/reset")
end

-- Queue scripted responses (a Lua list of R tables; see spec/mock/script.lua).
function Mock:script(responses)
  local list = setmetatable({}, cjson.array_mt)
  for i, r in ipairs(responses) do list[i] = r end
  self:_request("POST", "/__mock/script", cjson.encode({ responses = list }))
end

-- cjson decodes every number as a float on Lua 5.4; counters read better
-- (and compare with math.type) as integers.
local function int(v)
  return math.tointeger(v) or v
end

function Mock:stats()
  local _, text = self:_request("GET", "/__mock/stats")
  local t = cjson.decode(text)
  return { requests = int(t.requests), connections = int(t.connections) }
end

-- The request log: a list of { method, target, path, query, headers =
-- {{name, value}, ...}, body, connection, request_id }.
function Mock:requests()
  local _, text = self:_request("GET", "/__mock/requests")
  local log = cjson.decode(text)
  for _, r in ipairs(log) do r.connection = int(r.connection) end
  return log
end

-- Case-insensitive header lookup in a logged request.
function Mock:header(req, name)
  name = name:lower()
  for _, h in ipairs(req.headers or {}) do
    if h[1]:lower() == name then return h[2] end
  end
  return nil
end

-- SIGTERM, wait until the process is gone (SIGKILL after 5 s).  Idempotent.
function Mock:stop()
  if self.stopped then return end
  self.stopped = true
  process.stop(self.pid)
  if self.out_file then os.remove(self.out_file) end
  if self.err_file then os.remove(self.err_file) end
end

-- Last resort when a spec forgets m:stop().
Mock.__gc = function(self) pcall(Mock.stop, self) end

-- The usual spec set-up: one mock for a describe block, reset before each
-- test, with a fresh client (client_opts plus the mock's key and URL) handed
-- to `use(server, client)`. Busted's hooks are not visible from here, so
-- the spec registers the returned functions:
--   setup(session.setup) teardown(session.teardown) before_each(session.before_each)
function M.session(server_opts, client_opts, use)
  local openai = require("openai")
  local server, client
  local session = {}
  function session.setup() server = M.start(server_opts) end
  function session.teardown()
    if client then client:close() end
    server:stop()
  end
  function session.before_each()
    server:reset()
    if client then client:close() end
    local opts = { api_key = server_opts.api_key, base_url = server.base_url }
    for key, value in pairs(client_opts or {}) do opts[key] = value end
    client = openai.new(opts)
    use(server, client)
  end
  return session
end

return M
