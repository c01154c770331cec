-- Which transport a call goes through. Outside nginx: libcurl. Inside
-- nginx (OpenResty's Lua module): cosockets where nginx allows them, so a
-- call never blocks the worker; libcurl in the init phase (before nginx
-- serves anything, blocking is harmless); elsewhere a clear error.
local M = {}

-- The phases whose handlers may use cosockets (light threads made with
-- ngx.thread.spawn run in their parent's phase).
local COSOCKET_PHASES = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_client_hello = true, ssl_session_fetch = true, preread = true,
}

-- Where a call may block: nginx has not started serving yet.
local BLOCKING_SAFE_PHASES = { init = true }

-- The transports by name; each module is loaded on first use (the ngx one
-- only makes sense inside nginx).
local MODULES = { curl = "openai.transport.curl", ngx = "openai.transport.ngx" }
M.NAMES = { curl = true, ngx = true }

-- A new transport. settings: ca_file, ca_path, proxy, max_response_bytes,
-- max_response_values (what the transport honours of them); explicit:
-- which of ca_file, ca_path and proxy the user gave (a transport refuses
-- what it cannot honour rather than ignore it). Raises on bad settings.
function M.open(name, settings, explicit)
  return require(MODULES[name]).new(settings, explicit)
end

-- nginx's API when this module was loaded inside nginx (its Lua module
-- sets the global before any of our code runs), else nil: a process
-- outside nginx never gets one later.
local ngx = rawget(_G, "ngx")
if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then ngx = nil end

-- The running nginx phase, or nil outside nginx.
function M.nginx_phase()
  return ngx and ngx.get_phase()
end

-- Whether the running code may use cosockets: inside nginx, in a phase
-- that allows them.
function M.cosockets_allowed()
  local phase = M.nginx_phase()
  return phase ~= nil and COSOCKET_PHASES[phase] == true
end

-- The name of the transport for a call made now by a client configured
-- with `wanted` ("curl", "ngx" or nil for automatic), or nil and why the
-- call cannot be made here.
function M.choose(wanted)
  if wanted == "curl" or (ngx == nil and wanted == nil) then return "curl" end
  local phase = M.nginx_phase()
  if phase == nil then
    if wanted == "ngx" then return nil, "the ngx transport needs nginx's Lua module (OpenResty)" end
    return "curl"
  end
  if COSOCKET_PHASES[phase] then return "ngx" end
  if wanted == nil and BLOCKING_SAFE_PHASES[phase] then return "curl" end
  return nil, ("nginx's %s phase cannot make requests without blocking the worker: make the call from a"
    .. " request handler or a timer (ngx.timer.at(0, fn)), or pass transport = \"curl\" to openai.new"
    .. " to block on purpose"):format(phase)
end

return M
