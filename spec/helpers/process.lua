-- Files and processes for the spec helpers: quoting for /bin/sh, reading
-- files, and asking /proc whether a PID is alive.
local process = {}

-- Single-quotes a string for /bin/sh.
function process.shell_quote(text)
  return "'" .. tostring(text):gsub("'", "'\\''") .. "'"
end

-- The whole file, or nil when it cannot be opened.
function process.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("a")
  f:close()
  return data
end

function process.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- Runs a shell command; returns its output (stdout and stderr) and whether
-- it exited with status 0.
function process.run(command)
  local pipe = assert(io.popen(command .. " 2>&1", "r"))
  local output = pipe:read("a")
  local ok = pipe:close()
  return output, ok == true
end

-- Is `pid` a live process? A zombie counts as gone: nobody here reaps it.
function process.alive(pid)
  local stat = process.read_file("/proc/" .. pid .. "/stat")
  if not stat then return false end
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

-- The PID of this Lua process.
function process.own_pid()
  local stat = process.read_file("/proc/self/stat")
  return stat and tonumber(stat:match("^(%d+)"))
end

return process
