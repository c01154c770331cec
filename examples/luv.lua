-- Chat completions streamed side by side on a libuv loop (luv), under any
-- Lua: each prompt's call runs in a task; a poll handle on openai.pollfd()
-- wakes the loop when the transfers have data, and a timer set from
-- openai.timeout() when libcurl or a task waits on time (timers do not
-- show on the descriptor). A second timer, counted, stands for the rest
-- of the program, which goes on meanwhile. uv.run() returns once every
-- reply is complete; exit status 0, or 1 on an error.
--   lua5.4 examples/luv.lua ["prompt" ...]     (lua-luv; the module built for that Lua)
-- From the repository, for Lua 5.1 say (make LUA=lua5.1):
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua5.1/?.so;;" lua5.1 examples/luv.lua
local uv = require("luv")
local openai = require("openai")

local prompts = { ... }
if #prompts == 0 then prompts = { "Name three colours.", "Name three fruits." } end

local client = openai.new() -- OPENAI_API_KEY, OPENAI_BASE_URL

local function complete(prompt)
  local stream, failure = client.chat.completions.create {
    model = os.getenv("OPENAI_MODEL") or "gpt-4o-mini",
    messages = { { role = "user", content = prompt } },
    stream = true,
  }
  if not stream then error(failure, 0) end
  local parts = {}
  -- stream:next() in a while loop: Lua 5.1 cannot yield from a for-loop
  -- iterator, and it waits by yielding.
  while true do
    local chunk, err = stream:next()
    if err then error(err, 0) end
    if chunk == nil then break end
    local choice = chunk.choices[1]
    if choice and type(choice.delta.content) == "string" then parts[#parts + 1] = choice.delta.content end
  end
  return table.concat(parts)
end

local tasks = {}
for i, prompt in ipairs(prompts) do tasks[i] = openai.spawn(complete, prompt) end

local ticks = 0 -- the rest of the program: a timer ticking while the replies stream
local ticker = uv.new_timer()
ticker:start(10, 10, function() ticks = ticks + 1 end)

local io_watch = uv.new_poll(openai.pollfd())
local wakeup = uv.new_timer()
-- Does what is ready, then sleeps until the descriptor or the timer says
-- there is more; once every task is done, closes the handles, and
-- uv.run() returns.
local function drive()
  if openai.poll(0) == 0 then
    for _, handle in ipairs { io_watch, wakeup, ticker } do handle:close() end
    return
  end
  local seconds = openai.timeout()
  if seconds then wakeup:start(math.ceil(seconds * 1000), 0, drive) else wakeup:stop() end
end
io_watch:start("r", drive)
drive()
uv.run()
client:close()

local failed = false
for i, task in ipairs(tasks) do
  local ok, result = pcall(task.result, task) -- raises the task's error again
  if ok then
    io.write(("[%d] %s\n"):format(i, result))
  else
    failed = true
    io.stderr:write(("[%d] %s\n"):format(i, tostring(result)))
  end
end
io.write(("-- %d replies; %d ticks of the timer while they streamed\n"):format(#tasks, ticks))
os.exit(failed and 1 or 0)
