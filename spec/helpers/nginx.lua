-- Debian's nginx with its Lua module (lua-nginx-module on OpenResty's
-- LuaJIT) for the specs: run from a temporary prefix that holds its
-- configuration, pid file, logs and temp paths, on a free 127.0.0.1 port,
-- as a master process (daemon off) that forks its workers, and stopped by
-- the master's PID.
--
--   local nginx = require("spec.helpers.nginx")
--   local missing = nginx.missing()        -- nil, or why nginx specs must wait
--   local n = nginx.start { workers = 2, init = "lua code", locations = { ["/path"] = "lua code" },
--                           init_worker = function(prefix) return "lua code" end,
--                           http = { "directive;", ... },
--                           env = { NAME = "value" },    -- set for nginx, kept for its workers
--                           main = { "directive;", ... } } -- in the main context
--   n.url, n.pid, n.prefix; n.prefix .. "/reports" is writable by the workers
--   n:get("/path")                        -- status, body (5 s bound per request)
--   n:log()                               -- error.log's text
--   n:problems()                          -- its lines at level warn or above
--   n:stop()                              -- SIGQUIT to the master, waits until it is gone
--
-- Lua code runs with the repository's lua/ and spec/ on lua_package_path
-- and build/luajit/ on lua_package_cpath (`make LUA=luajit` builds it).
local http = require("socket.http")
local ltn12 = require("ltn12")
local socket = require("socket")
local process = require("spec.helpers.process")

local M = {}

M.BINARY = "/usr/sbin/nginx"
-- Where Debian's packages put the modules (what /etc/nginx/modules-enabled
-- loads for the system's nginx).
M.MODULES = {
  "/usr/lib/nginx/modules/ndk_http_module.so",
  "/usr/lib/nginx/modules/ngx_http_lua_module.so",
}

local REQUEST_TIMEOUT = 5 -- seconds, per request to nginx
local START_TIMEOUT = 10

-- nil when nginx and its Lua module are installed, else a reason.
function M.missing()
  local lacking = {}
  for _, path in ipairs { M.BINARY, M.MODULES[1], M.MODULES[2] } do
    if not process.read_file(path) then lacking[#lacking + 1] = path end
  end
  if #lacking == 0 then return nil end
  return "nginx specs need " .. table.concat(lacking, ", ")
    .. " (apt-get install nginx libnginx-mod-http-lua)"
end

local free_port = require("spec.helpers.mock").free_port

local function cwd()
  local output, ok = process.run("pwd")
  assert(ok, output)
  return (output:gsub("%s+$", ""))
end

local function config(prefix, port, opts)
  local root = cwd()
  local lines = {}
  local function add(text) lines[#lines + 1] = text end
  for _, module in ipairs(M.MODULES) do add("load_module " .. module .. ";") end
  local names = {}
  for name in pairs(opts.env or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do add("env " .. name .. ";") end
  for _, directive in ipairs(opts.main or {}) do add(directive) end
  add("daemon off;")
  add("master_process on;")
  add("worker_processes " .. (opts.workers or 1) .. ";")
  add("pid " .. prefix .. "/nginx.pid;")
  add("lock_file " .. prefix .. "/nginx.lock;")
  add("error_log " .. prefix .. "/error.log notice;")
  add("events { worker_connections 64; }")
  add("http {")
  add("  access_log off;")
  for _, name in ipairs { "client_body", "proxy", "fastcgi", "uwsgi", "scgi" } do
    add(("  %s_temp_path %s/tmp/%s;"):format(name, prefix, name))
  end
  -- ";;": the default paths too, where Debian keeps lua-resty-core.
  add(('  lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;%s/?.lua;;";'):format(root, root, root))
  add(('  lua_package_cpath "%s/build/luajit/?.so;;";'):format(root))
  for _, directive in ipairs(opts.http or {}) do add("  " .. directive) end
  add("  init_by_lua_block {")
  add(opts.init or "")
  add("  }")
  if opts.init_worker then
    add("  init_worker_by_lua_block {")
    add(opts.init_worker(prefix))
    add("  }")
  end
  add("  server {")
  add("    listen 127.0.0.1:" .. port .. ";")
  for path, code in pairs(opts.locations or {}) do
    add("    location = " .. path .. " {")
    add("      default_type text/plain;")
    add("      content_by_lua_block {")
    add(code)
    add("      }")
    add("    }")
  end
  add("  }")
  add("}")
  return table.concat(lines, "\n") .. "\n"
end

local Nginx = {}
Nginx.__index = Nginx

local accepts = require("spec.helpers.mock").accepts

-- Starts nginx; raises (after stopping it) when it does not come up.
function M.start(opts)
  local prefix = process.temp_dir()
  -- reports/: where the workers may write (they run as nobody when the
  -- master runs as root)
  assert(os.execute("mkdir " .. process.shell_quote(prefix .. "/tmp") .. " " .. process.shell_quote(prefix .. "/reports")
    .. " && chmod 777 " .. process.shell_quote(prefix .. "/reports")))
  local port = free_port()
  local conf = prefix .. "/nginx.conf"
  process.write_file(conf, config(prefix, port, opts))
  local assignments = {}
  for name, value in pairs(opts.env or {}) do assignments[#assignments + 1] = name .. "=" .. process.shell_quote(value) end
  local command = table.concat({
    table.concat(assignments, " "), M.BINARY, "-p", process.shell_quote(prefix .. "/"), "-c", process.shell_quote(conf),
    "-e", process.shell_quote(prefix .. "/error.log"),
    ">" .. process.shell_quote(prefix .. "/stdout.log"), "2>&1 </dev/null",
  }, " ")
  local pid = assert(process.spawn(command), "could not start nginx")
  local self = setmetatable({ pid = pid, port = port, prefix = prefix, url = "http://127.0.0.1:" .. port }, Nginx)
  -- nginx listens before it writes its pid file: wait for both.
  local function pid_written()
    return (process.read_file(prefix .. "/nginx.pid") or ""):match("%d+") ~= nil
  end
  if not process.wait_ready(pid, START_TIMEOUT, function() return accepts(port) and pid_written() end) then
    local why = (process.read_file(prefix .. "/stdout.log") or "") .. (self:log() or "")
    self:stop()
    error("nginx did not start: " .. why, 2)
  end
  -- The PID started is the master's, the one nginx writes down.
  local written = tonumber((process.read_file(prefix .. "/nginx.pid") or ""):match("%d+"))
  if written ~= pid then
    self:stop()
    error("nginx's pid file says " .. tostring(written) .. ", not the PID started, " .. pid, 2)
  end
  return self
end

-- One GET; returns status, body (nil, message when nginx does not answer
-- within REQUEST_TIMEOUT).
function Nginx:get(path)
  local chunks = {}
  local _, status = http.request {
    url = self.url .. path,
    sink = ltn12.sink.table(chunks),
    create = function()
      local s = socket.tcp()
      s:settimeout(REQUEST_TIMEOUT)
      return s
    end,
  }
  return status, table.concat(chunks)
end

function Nginx:log()
  return process.read_file(self.prefix .. "/error.log") or ""
end

-- error.log's lines at level warn, error, crit, alert or emerg.
function Nginx:problems()
  local found = {}
  for line in self:log():gmatch("[^\n]+") do
    if line:find("%[warn%]") or line:find("%[error%]") or line:find("%[crit%]") or line:find("%[alert%]")
      or line:find("%[emerg%]") then
      found[#found + 1] = line
    end
  end
  return found
end

-- Worker PIDs: the master's children.
function Nginx:workers()
  local output = process.run("cat /proc/" .. self.pid .. "/task/*/children 2>/dev/null")
  local pids = {}
  for pid in output:gmatch("%d+") do pids[#pids + 1] = tonumber(pid) end
  table.sort(pids)
  return pids
end

-- SIGQUIT (graceful) to the master, then waits until it is gone (SIGKILL
-- to it after 5 s); its workers end with it. Keeps the prefix (and its
-- log) until remove(). Idempotent.
function Nginx:stop()
  if self.stopped then return end
  self.stopped = true
  if process.alive(self.pid) then
    os.execute("kill -QUIT " .. self.pid .. " 2>/dev/null")
    local deadline = socket.gettime() + 5
    while process.alive(self.pid) and socket.gettime() < deadline do socket.sleep(0.01) end
  end
  process.stop(self.pid) -- SIGTERM, then SIGKILL, if it is still there
end

function Nginx:remove()
  self:stop()
  process.remove_dir(self.prefix)
end

Nginx.__gc = function(self) pcall(Nginx.stop, self) end

return M
