-- Streams in a process of its own, so that its file-descriptor limit
-- (ulimit -n), heap and resident memory are the test's alone. For
-- spec/reclaim_spec.lua and spec/ownership_spec.lua.
--
--   lua5.4 spec/memory/child.lua MODE BASE_URL COUNT [HEAP_MB]
--   (or LUA_CPATH='build/luajit/?.so;;' luajit spec/memory/child.lua ...)
--
-- MODE:
--   abandon  open COUNT streams, read one event of each and drop it, with
--            HEAP_MB of live Lua tables; prints "opened N max_fds F"
--   keep     open streams and keep them until one fails; prints the index
--            and the error, then drops them, collects, opens one more and
--            prints "then: ok" or the error
--   interleave  open two streams of COUNT events each, read 5 of the first,
--            then both alternately: the second always has unread events,
--            never none. Prints "events N grew KB": the growth of resident
--            memory while reading (sampled every 500 pairs after a full
--            collection)
--   stopped  as abandon (without counting descriptors: a popen would
--            need one), with the collector stopped: only the full
--            collection the client runs when the process is out of file
--            descriptors can close the abandoned streams
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path
-- Lua 5.4's module from build/, unless the environment names one (the
-- specs give the runtime's, make asan its instrumented build).
if not (os.getenv("LUA_CPATH_5_4") or os.getenv("LUA_CPATH")) then package.cpath = "build/?.so;" .. package.cpath end
local openai = require("openai")

local mode, base_url, count, heap_mb = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4] or "0")
local client = openai.new { api_key = "sk-test-reclaim-0123456789", base_url = base_url, max_retries = 0 }
local PARAMS = { model = "m", stream = true, messages = {} }

local function open_files()
  local pipe = assert(io.popen("ls /proc/" .. (io.open("/proc/self/stat"):read("*l"):match("^%d+")) .. "/fd"))
  local n = 0
  for _ in pipe:lines() do n = n + 1 end
  pipe:close()
  return n
end

local live = {}
for i = 1, math.floor(heap_mb * 1024 * 1024 / 64) do live[i] = { i } end
collectgarbage("collect")

local function rss_kb()
  local f = assert(io.open("/proc/self/status"))
  local kb = tonumber(f:read("*a"):match("VmRSS:%s*(%d+) kB"))
  f:close()
  return kb
end

if mode == "interleave" then
  local a = assert(client.chat.completions.create(PARAMS))
  local b = assert(client.chat.completions.create(PARAMS))
  for i = 1, 5 do assert(assert(a:next()).n == i) end
  collectgarbage("collect")
  local before = rss_kb()
  local peak = before
  for i = 1, count - 5 do
    assert(assert(a:next()).n == i + 5)
    assert(assert(b:next()).n == i)
    if i % 500 == 0 then
      collectgarbage("collect")
      peak = math.max(peak, rss_kb())
    end
  end
  assert(a:next() == nil)
  for i = count - 4, count do assert(assert(b:next()).n == i) end
  assert(b:next() == nil)
  io.write("events ", count, " grew ", peak - before, "\n")
elseif mode == "keep" then
  local kept = {}
  for i = 1, count do
    local stream, err = client.chat.completions.create(PARAMS)
    if stream == nil then
      io.write(i, ": ", tostring(err), "\n")
      break
    end
    kept[i] = stream
  end
  kept = nil -- luacheck: ignore
  collectgarbage("collect")
  local stream, err = client.chat.completions.create(PARAMS)
  io.write("then: ", stream and "ok" or tostring(err), "\n")
else
  if mode == "stopped" then collectgarbage("stop") end
  local max_files = 0
  for i = 1, count do
    local stream, err = client.chat.completions.create(PARAMS)
    if stream == nil then
      io.write(i, ": ", tostring(err), "\n")
      os.exit(1)
    end
    assert(stream:next())
    if i % 10 == 0 and mode == "abandon" then max_files = math.max(max_files, open_files()) end
  end
  io.write("opened ", count, " max_fds ", max_files, "\n")
end
io.write("live ", #live, "\n")
