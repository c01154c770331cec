-- Start, query and stop the hostile server (spec/hostile/server.lua) from
-- busted specs.
--
--   local hostile = require("spec.helpers.hostile")
--   local h = hostile.start({ record_dir = dir })  -- record_dir: early mode
--   h.base_url (http://127.0.0.1:PORT/v1), h.url (without /v1), h.pid
--   h:stats() --> { connections = C, requests = R }   h:reset()   h:stop()
--
-- Control calls use luasocket with a short timeout, so a wedged server
-- fails the spec instead of hanging it.

local socket = require("socket")
local http = require("socket.http")
local ltn12 = require("ltn12")
local process = require("spec.helpers.process")

local M = {}

local Hostile = {}
Hostile.__index = Hostile

local CONTROL_TIMEOUT = 5 -- seconds
local START_TIMEOUT = 10

-- Next to this file, whatever the working directory.
local function server_script()
  local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/helpers"
  return dir .. "/../hostile/server.lua"
end

-- opts: record_dir (directory for early-mode bodies), lua (default lua5.4).
function M.start(opts)
  opts = opts or {}
  local out, err = os.tmpname(), os.tmpname()
  local args = { opts.lua or "lua5.4", server_script(), "--port", "0" }
  if opts.record_dir then
    args[#args + 1] = "--record-dir"
    args[#args + 1] = opts.record_dir
  end
  local parent = process.own_pid()
  if parent then -- the server exits once this test process is gone
    args[#args + 1] = "--parent-pid"
    args[#args + 1] = tostring(parent)
  end
  for i, a in ipairs(args) do args[i] = process.shell_quote(a) end
  local cmd = table.concat(args, " ") .. " >" .. process.shell_quote(out) ..
    " 2>" .. process.shell_quote(err) .. " </dev/null"
  local pid = assert(process.spawn(cmd), "hostile: could not start " .. cmd)

  local self = setmetatable({ pid = pid, out_file = out, err_file = err }, Hostile)
  local ready = process.wait_ready(pid, START_TIMEOUT, function()
    self.base_url = (process.read_file(out) or ""):match("^(http://[^\n]+)\n")
    return self.base_url ~= nil
  end)
  if not ready then
    local why = process.read_file(err) or ""
    self:stop()
    error("hostile: server did not start: " .. why, 2)
  end
  self.url = self.base_url:gsub("/v1$", "")
  return self
end

-- One control request; returns the body of a 200 answer, raises otherwise.
function Hostile:_control(method, path)
  local chunks = {}
  local _, status = http.request({
    url = self.url .. path,
    method = method,
    headers = method == "POST" and { ["content-length"] = "0" } or nil,
    sink = ltn12.sink.table(chunks),
    create = function()
      local s = socket.tcp()
      s:settimeout(CONTROL_TIMEOUT)
      return s
    end,
  })
  local body = table.concat(chunks)
  if status ~= 200 then
    error("hostile: " .. method .. " " .. path .. " -> " .. tostring(status) .. " " .. body, 3)
  end
  return body
end

function Hostile:stats()
  local body = self:_control("GET", "/__hostile/stats")
  local c, r = body:match('^{"connections":(%d+),"requests":(%d+)}$')
  if not c then error("hostile: bad stats " .. body, 2) end
  return { connections = math.tointeger(tonumber(c)), requests = math.tointeger(tonumber(r)) }
end

function Hostile:reset()
  self:_control("POST", "/__hostile/reset")
end

-- SIGTERM, wait until the process is gone (SIGKILL after 5 s).  Idempotent.
function Hostile:stop()
  if self.stopped then return end
  self.stopped = true
  process.stop(self.pid)
  os.remove(self.out_file)
  os.remove(self.err_file)
end

-- Last resort when a spec forgets h:stop().
Hostile.__gc = function(self) pcall(Hostile.stop, self) end

return M
