-- The project's client in `make bench-concurrency` (tools/bench-concurrency.sh):
-- many calls in flight from one thread, as tasks (openai.spawn) driven by
-- openai.poll, against the local nginx.
--
--   lua5.4 bench/concurrent_bench.lua retrieve BASE_URL COMPLETION_ID SECONDS IN_FLIGHT
--     IN_FLIGHT tasks share one client, each retrieving the completion in a
--     loop until SECONDS have passed (then the last calls finish). A first
--     round of IN_FLIGHT calls, not counted, opens the connections and
--     checks the answer (seed must come back as 4944116822809979520).
--     Prints "RESULT <calls> <wall s> <process CPU s> <peak RSS kB>".
--
--   lua5.4 bench/concurrent_bench.lua streams BASE_URL STREAMS CHUNKS INTERVAL
--     STREAMS tasks, each opening a chat completion stream
--     (chat.completions.create, stream = true; bench/sse_server.lua answers
--     with CHUNKS content chunks INTERVAL seconds apart) and reading it to
--     its end with stream:next(), which decodes every chunk. Prints
--     "RESULT <streams> <chunks> <wall s> <process CPU s> <RSS before kB>
--      <peak RSS kB> <Lua heap before kB> <Lua heap with all open kB>
--      <RSS with all open kB>", the "before" figures after a full GC and
--     before the first stream opens, the "all open" ones when the last
--     stream's create() returned.
package.cpath = "build/?.so;" .. package.cpath
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path

local openai = require("openai")
local core = require("openai.core")

local monotonic, clock, spawn, poll = core.monotonic, os.clock, openai.spawn, openai.poll
local KEY = "sk-bench-0123456789"

local status_kb = require("bench.stats").status_kb

-- Polls until every task has ended.
local function drive()
  while poll(1) > 0 do end
end

local function usage()
  io.stderr:write("usage: lua5.4 bench/concurrent_bench.lua retrieve BASE_URL COMPLETION_ID SECONDS IN_FLIGHT\n"
    .. "       lua5.4 bench/concurrent_bench.lua streams BASE_URL STREAMS CHUNKS INTERVAL\n")
  os.exit(2)
end

local mode, base_url = arg[1], arg[2]
if not base_url then usage() end
local client = openai.new { api_key = KEY, base_url = base_url, max_retries = 0 }

if mode == "retrieve" then
  local id, seconds, in_flight = arg[3], tonumber(arg[4]), tonumber(arg[5])
  if not (id and seconds and in_flight) then usage() end
  local retrieve = client.chat.completions.retrieve

  local tasks = {}
  for i = 1, in_flight do tasks[i] = spawn(retrieve, id) end
  for i = 1, in_flight do
    local first = tasks[i]:result()
    if first == nil or math.type(first.seed) ~= "integer" or first.seed ~= 4944116822809979520 then
      error("bad response: seed " .. tostring(first and first.seed))
    end
  end

  local calls = 0
  local wall0, cpu0 = monotonic(), clock()
  local deadline = wall0 + seconds
  local function worker()
    repeat
      if retrieve(id) == nil then error("no response") end
      calls = calls + 1
    until monotonic() >= deadline
  end
  for i = 1, in_flight do tasks[i] = spawn(worker) end
  drive()
  local wall, cpu = monotonic() - wall0, clock() - cpu0
  for i = 1, in_flight do tasks[i]:result() end -- raises a task's error
  print(("RESULT %d %.6f %.6f %d"):format(calls, wall, cpu, status_kb("VmHWM")))

elseif mode == "streams" then
  local count, chunks, interval = tonumber(arg[3]), arg[4], arg[5]
  if not (count and chunks and interval) then usage() end
  local params = { model = "gpt-4o-mini", messages = { { role = "user", content = "hi" } }, stream = true }
  local opts = { headers = { ["X-Bench-Chunks"] = chunks, ["X-Bench-Interval"] = interval } }
  local create = client.chat.completions.create

  local opened, received = 0, 0
  local heap_open, rss_open
  local function reader()
    local stream = assert(create(params, opts))
    opened = opened + 1
    if opened == count then heap_open, rss_open = collectgarbage("count"), status_kb("VmRSS") end
    while true do
      local chunk, err = stream:next()
      if chunk == nil then
        if err ~= nil then error(err) end
        break
      end
      received = received + 1
    end
  end

  collectgarbage()
  collectgarbage()
  local rss_before, heap_before = status_kb("VmRSS"), collectgarbage("count")
  local wall0, cpu0 = monotonic(), clock()
  local tasks = {}
  for i = 1, count do tasks[i] = spawn(reader) end
  drive()
  local wall, cpu = monotonic() - wall0, clock() - cpu0
  for i = 1, count do tasks[i]:result() end -- raises a task's error
  print(("RESULT %d %d %.6f %.6f %d %d %.0f %.0f %d"):format(count, received, wall, cpu, rss_before,
    status_kb("VmHWM"), heap_before, heap_open or -1, rss_open or -1))

else
  usage()
end
client:close()
