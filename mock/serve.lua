-- What the test servers (mock/server.lua, spec/hostile/server.lua)
-- share: their command line and their life cycle.
local uv = require("luv")

local serve = {}

-- Exits with status 2 after "<name>: <msg>" on stderr.
function serve.die(name, msg)
  io.stderr:write(name, ": ", msg, "\n")
  os.exit(2)
end

-- Parses --port N, --host 127.0.0.1 (loopback only: these servers must
-- never be reachable from outside), --parent-pid PID and the options of
-- `extra`: a map from an option name to a function(value) that returns the
-- value to keep, or nil and a complaint. Returns { host, port, parent_pid,
-- [extra option] = value }.
function serve.parse_args(name, argv, extra)
  local opts = { host = "127.0.0.1", port = 0 }
  local function die(msg) serve.die(name, msg) end
  local i = 1
  while i <= #argv do
    local option, value = argv[i]:match("^%-%-([%w-]+)=(.*)$")
    option = option or argv[i]:match("^%-%-([%w-]+)$")
    if not option then die("unexpected argument " .. argv[i]) end
    if value == nil then
      i = i + 1
      value = argv[i] or die("missing value for --" .. option)
    end
    if option == "port" then
      local port = math.tointeger(tonumber(value))
      if not port or port < 0 or port > 65535 then die("bad port " .. value) end
      opts.port = port
    elseif option == "host" then
      if value ~= "127.0.0.1" then die("only --host 127.0.0.1 is allowed") end
    elseif option == "parent-pid" then
      opts.parent_pid = math.tointeger(tonumber(value)) or die("bad parent pid")
    elseif extra[option] then
      local kept, complaint = extra[option](value)
      if kept == nil then die(complaint) end
      opts[option] = kept
    else
      die("unknown option --" .. option)
    end
    i = i + 1
  end
  return opts
end

-- Prints the base URL, then serves until SIGTERM or SIGINT, or until the
-- process opts.parent_pid is gone (so a crashed test run leaves no server
-- behind); close() then closes the server's own handles. Exits 0.
function serve.run(opts, port, close)
  local handles = {}
  local function shutdown()
    close()
    for _, handle in ipairs(handles) do
      if not handle:is_closing() then handle:close() end
    end
    uv.stop()
  end
  for _, signame in ipairs { "sigterm", "sigint" } do
    local signal = uv.new_signal()
    signal:start(signame, shutdown)
    handles[#handles + 1] = signal
  end
  -- A peer vanishing mid-write must surface as a write error, not kill us.
  local sigpipe = uv.new_signal()
  sigpipe:start("sigpipe", function() end)
  handles[#handles + 1] = sigpipe
  if opts.parent_pid then
    local watchdog = uv.new_timer()
    watchdog:start(1000, 1000, function()
      if not uv.kill(opts.parent_pid, 0) then shutdown() end
    end)
    handles[#handles + 1] = watchdog
  end
  io.stdout:write(string.format("http://%s:%d/v1\n", opts.host, port))
  io.stdout:flush()
  uv.run("default")
  os.exit(0)
end

return serve
