-- A test server run as a process of its own (mock/server.lua,
-- spec/hostile/server.lua): started on a free 127.0.0.1 port, told to exit
-- when this process is gone, stopped by its PID. Control requests go
-- through luasocket with a short timeout, so a wedged server fails a spec
-- instead of hanging it. spec/helpers/mock.lua and hostile.lua build on it.
local socket = require("socket")
local http = require("socket.http")
local ltn12 = require("ltn12")
local process = require("spec.helpers.process")

local Server = {}
Server.__index = Server

local CONTROL_TIMEOUT = 5 -- seconds
local START_TIMEOUT = 10

-- Starts `script` (a path relative to spec/) with `args` and returns an
-- object of `class` (whose __index leads to Server) with pid, base_url
-- (http://127.0.0.1:PORT/v1) and url (without /v1). `name` prefixes errors.
function Server.start(class, name, script, args, lua)
  local helpers = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/helpers"
  local out, err = os.tmpname(), os.tmpname()
  local argv = { lua or "lua5.4", helpers .. "/../" .. script, "--port", "0" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local parent = process.own_pid()
  if parent then
    argv[#argv + 1] = "--parent-pid"
    argv[#argv + 1] = tostring(parent)
  end
  for i, a in ipairs(argv) do argv[i] = process.shell_quote(a) end
  local command = table.concat(argv, " ") .. " >" .. process.shell_quote(out) ..
    " 2>" .. process.shell_quote(err) .. " </dev/null"
  local pid = assert(process.spawn(command), name .. ": could not start " .. command)
  local self = setmetatable({ name = name, pid = pid, out_file = out, err_file = err }, class)
  local ready = process.wait_ready(pid, START_TIMEOUT, function()
    self.base_url = (process.read_file(out) or ""):match("^(http://[^\n]+)\n")
    return self.base_url ~= nil
  end)
  if not ready then
    local why = process.read_file(err) or ""
    self:stop()
    error(name .. ": server did not start: " .. why, 3)
  end
  self.url = self.base_url:gsub("/v1$", "")
  return self
end

-- One control request (a JSON body, or none); returns the body of a 200
-- answer, raises otherwise.
function Server:control(method, path, body)
  local chunks = {}
  local headers = { ["content-length"] = tostring(body and #body or 0) }
  if body then headers["content-type"] = "application/json" end
  local _, status = http.request({
    url = self.url .. path,
    method = method,
    headers = (body or method == "POST") and headers or nil,
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(chunks),
    create = function()
      local s = socket.tcp()
      s:settimeout(CONTROL_TIMEOUT)
      return s
    end,
  })
  local text = table.concat(chunks)
  if status ~= 200 then
    error(("%s: control request %s %s -> %s %s"):format(self.name, method, path, tostring(status), text), 3)
  end
  return text
end

-- SIGTERM, wait until the process is gone (SIGKILL after 5 s). Idempotent.
function Server:stop()
  if self.stopped then return end
  self.stopped = true
  process.stop(self.pid)
  os.remove(self.out_file)
  os.remove(self.err_file)
end

return Server
