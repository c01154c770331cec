-- Start, stop and steer the local OpenAI mock (mock/server.lua) from
-- busted specs.
--
--   local mock = require("spec.helpers.mock")
--   local m = mock.start({ api_key = "sk-test-..." })
--   m.base_url, m.url, m.pid
--   m:reset()  m:script({ {status = 500}, {status = 200, json = {...}} })
--   m:stats()  m:in_flight()  m:requests()  m:header(req, "authorization")
--   m:stop()
--   mock.free_port()
--
-- The process and its control requests: spec/helpers/server.lua.

local socket = require("socket")
local cjson = require("cjson")
local Server = require("spec.helpers.server")

local M = {}

local Mock = setmetatable({}, { __index = Server })
Mock.__index = Mock

-- A TCP port on 127.0.0.1 where nothing listens (at the time of the call).
function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- Whether something accepts connections on 127.0.0.1:port.
function M.accepts(port)
  local c = socket.tcp()
  c:settimeout(0.2)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok ~= nil
end

-- Start a mock.  opts: api_key (string), lua (interpreter, default lua5.4),
-- port (default 0 = any free port).
function M.start(opts)
  opts = opts or {}
  local args = {}
  if opts.api_key then args[#args + 1], args[#args + 2] = "--api-key", opts.api_key end
  if opts.port then args[#args + 1], args[#args + 2] = "--port", tostring(opts.port) end -- the last --port wins
  return Server.start(Mock, "mock", "../mock/server.lua", args, opts.lua)
end

-- One control request; returns status, body.
function Mock:_request(method, path, body)
  return 200, self:control(method, path, body)
end

function Mock:reset()
  self:_request("POST", "/__mock/reset")
end

-- Queue scripted responses (a Lua list of R tables; see mock/script.lua).
function Mock:script(responses)
  local list = setmetatable({}, cjson.array_mt)
  for i, r in ipairs(responses) do list[i] = r end
  self:_request("POST", "/__mock/script", cjson.encode({ responses = list }))
end

-- cjson decodes every number as a float on Lua 5.3 and 5.4; counters read
-- better (and compare with math.type) as integers. Older runtimes have
-- numbers only.
local tointeger = math.tointeger or function(v) return v end
local function int(v)
  return tointeger(v) or v
end

function Mock:stats()
  local _, text = self:_request("GET", "/__mock/stats")
  local t = cjson.decode(text)
  return { requests = int(t.requests), connections = int(t.connections) }
end

-- API requests whose response has not ended: now, and the most at once
-- since the last reset.
function Mock:in_flight()
  local _, text = self:_request("GET", "/__mock/stats")
  local t = cjson.decode(text)
  return int(t.in_flight), int(t.max_in_flight)
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

-- Last resort when a spec forgets m:stop() (tables are finalized from Lua
-- 5.2 on; elsewhere the server's --parent-pid ends it with the run).
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
