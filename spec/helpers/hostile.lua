-- Start, query and stop the hostile server (spec/hostile/server.lua) from
-- busted specs.
--
--   local hostile = require("spec.helpers.hostile")
--   local h = hostile.start { files = { ["chatcmpl-x.json"] = text } }
--   h.base_url (http://127.0.0.1:PORT/v1), h.url (without /v1), h.pid
--   h.dir: its directory (early mode records bodies there, files mode
--   serves them), made for it and removed by h:stop()
--   h:stats() --> { connections = C, requests = R }   h:reset()   h:stop()
--
-- The process and its control requests: spec/helpers/server.lua.
local process = require("spec.helpers.process")
local Server = require("spec.helpers.server")

local M = {}

local Hostile = setmetatable({}, { __index = Server })
Hostile.__index = Hostile

-- opts: files (name -> content, written to its directory), dir = false
-- (no directory: early and files modes then refuse), lua (default lua5.4).
function M.start(opts)
  opts = opts or {}
  if opts.dir == false then return Server.start(Hostile, "hostile", "hostile/server.lua", {}, opts.lua) end
  local dir = process.temp_dir()
  for name, content in pairs(opts.files or {}) do process.write_file(dir .. "/" .. name, content) end
  local ok, h = pcall(Server.start, Hostile, "hostile", "hostile/server.lua", { "--record-dir", dir }, opts.lua)
  if not ok then
    process.remove_dir(dir)
    error(h, 2)
  end
  h.dir = dir
  return h
end

function Hostile:stats()
  local body = self:control("GET", "/__hostile/stats")
  local c, r = body:match('^{"connections":(%d+),"requests":(%d+)}$')
  if not c then error("hostile: bad stats " .. body, 2) end
  return { connections = tonumber(c), requests = tonumber(r) }
end

function Hostile:reset()
  self:control("POST", "/__hostile/reset")
end

function Hostile:stop()
  Server.stop(self)
  if self.dir then process.remove_dir(self.dir) end
end

-- Last resort when a spec forgets h:stop() (tables are finalized from Lua
-- 5.2 on; elsewhere the server's --parent-pid ends it with the run).
Hostile.__gc = function(self) pcall(Hostile.stop, self) end

return M
