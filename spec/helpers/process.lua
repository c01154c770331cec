-- Files and processes for the spec helpers: quoting for /bin/sh, reading
-- files, and asking /proc whether a PID is alive.
local socket = require("socket")

local process = {}

-- Single-quotes a string for /bin/sh.
function process.shell_quote(text)
  return "'" .. tostring(text):gsub("'", "'\\''") .. "'"
end

-- The whole file, or nil when it cannot be opened.
function process.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("*a")
  f:close()
  return data
end

function process.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- A new empty directory; remove it with remove_dir.
function process.temp_dir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. process.shell_quote(dir)), "cannot make " .. dir)
  return dir
end

function process.remove_dir(dir)
  os.execute("rm -rf " .. process.shell_quote(dir))
end

-- Runs a shell command; returns its output (stdout and stderr) and its
-- exit code. The shell reports the code after the output: pclose() tells
-- nothing of it on Lua 5.1 and LuaJIT.
function process.capture(command)
  local pipe = assert(io.popen("( " .. command .. "\n) 2>&1; printf '\\n%d\\n' \"$?\"", "r"))
  local output = pipe:read("*a")
  pipe:close()
  local text, code = output:match("^(.*)\n(%d+)\n$")
  assert(text, "no exit code from: " .. command)
  return text, tonumber(code)
end

-- The same; returns the output and whether the exit code was 0.
function process.run(command)
  local output, code = process.capture(command)
  return output, code == 0
end

-- Is `pid` a live process? A zombie counts as gone: nobody here reaps it.
function process.alive(pid)
  local stat = process.read_file("/proc/" .. pid .. "/stat")
  if not stat then return false end
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

-- Whether this process runs under AddressSanitizer (tools/sanitize.sh preloads
-- its runtime into every lua5.4) or valgrind: then resident memory does
-- not tell what a program holds (ASan's quarantine keeps freed memory), nor
-- CPU time how fast it is.
function process.instrumented()
  local preload = os.getenv("LD_PRELOAD") or ""
  local maps = process.read_file("/proc/self/maps") or ""
  return preload:find("asan", 1, true) ~= nil or maps:find("vgpreload", 1, true) ~= nil
end

-- The PID of this Lua process.
function process.own_pid()
  local stat = process.read_file("/proc/self/stat")
  return stat and tonumber(stat:match("^(%d+)"))
end

-- Starts a shell command in the background; returns its PID.
function process.spawn(command)
  local pipe = assert(io.popen("sh -c " .. process.shell_quote(command .. " & echo $!"), "r"))
  local pid = tonumber(pipe:read("*l") or "")
  pipe:close()
  return pid
end

-- Polls `ready()` every 20 ms until it is true. Returns false when the
-- process `pid` died or `seconds` passed first.
function process.wait_ready(pid, seconds, ready)
  local deadline = socket.gettime() + seconds
  while not ready() do
    if not process.alive(pid) or socket.gettime() > deadline then return false end
    socket.sleep(0.02)
  end
  return true
end

-- SIGTERM, up to 5 s to go, then SIGKILL; returns once the PID is gone.
function process.stop(pid)
  if not pid or not process.alive(pid) then return end
  os.execute("kill -TERM " .. pid .. " 2>/dev/null")
  local deadline = socket.gettime() + 5
  while process.alive(pid) and socket.gettime() < deadline do socket.sleep(0.01) end
  if process.alive(pid) then
    os.execute("kill -KILL " .. pid .. " 2>/dev/null")
    while process.alive(pid) do socket.sleep(0.01) end
  end
end

return process
