-- A LÖVE game streaming a chat completion without blocking a frame: the
-- call runs in a task, and love.update drives it with openai.poll(0),
-- which does the I/O that is ready and returns at once. The reply is
-- written out (and drawn, when conf.lua keeps a window) as it arrives;
-- the game quits once it is complete: exit status 0, or 1 on an error.
--
-- From the repository (LÖVE runs LuaJIT: the LuaJIT build of the module;
-- LUA_PATH and LUA_CPATH tell it where lua/ and the build are, and are
-- not needed once the module is installed):
--   make LUA=luajit
--   export OPENAI_API_KEY=sk-...        # or OPENAI_BASE_URL=<the mock's URL>
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/luajit/?.so;;" love examples/love ["your prompt"]
local openai = require("openai")

local reply = {}   -- the reply's pieces so far
local frames = 0   -- frames the game ran while the reply was on its way
local task

function love.load(args)
  local client = openai.new() -- OPENAI_API_KEY, OPENAI_BASE_URL
  task = openai.spawn(function(prompt)
    local stream, failure = client.chat.completions.create {
      model = os.getenv("OPENAI_MODEL") or "gpt-4o-mini",
      messages = { { role = "user", content = prompt } },
      stream = true,
    }
    if not stream then error(failure, 0) end
    while true do
      local chunk, err = stream:next() -- waits by yielding: the frame goes on
      if err then error(err, 0) end
      if chunk == nil then break end
      local choice = chunk.choices[1]
      if choice and type(choice.delta.content) == "string" then
        reply[#reply + 1] = choice.delta.content
        io.write(choice.delta.content)
        io.flush()
      end
    end
    client:close()
  end, args[1] or "Write a haiku about games.")
end

function love.update()
  openai.poll(0)
  if not task:done() then
    frames = frames + 1
    return
  end
  local ok, err = pcall(task.result, task) -- raises the task's error again
  if ok then
    io.write(("\n-- %d frames ran while the reply streamed\n"):format(frames))
  else
    io.stderr:write("\n", tostring(err), "\n")
  end
  love.event.quit(ok and 0 or 1)
end

function love.draw()
  love.graphics.printf(table.concat(reply), 10, 10, love.graphics.getWidth() - 20)
end
