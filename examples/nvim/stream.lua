-- Neovim: two chat completions streamed side by side into a buffer while
-- the editor stays responsive. The calls run in tasks; Neovim's event loop
-- (vim.loop, libuv) drives them: a poll handle on openai.pollfd() wakes it
-- when the transfers have data, a timer set from openai.timeout() when
-- libcurl or a task waits on time (timers do not show on the descriptor).
-- A second timer, counted, stands for everything else the editor does
-- meanwhile.
--
-- In a running Neovim (the module on its package.path and package.cpath,
-- the LuaJIT build): :luafile examples/nvim/stream.lua
-- Headless, from the repository: the buffer is written to stdout and
-- Neovim exits, status 0, or 1 on an error:
--   make LUA=luajit
--   export OPENAI_API_KEY=sk-...        # or OPENAI_BASE_URL=<the mock's URL>
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/luajit/?.so;;" \
--     nvim --headless -u NONE -i NONE -n -c "luafile examples/nvim/stream.lua"
local uv = vim.loop

local PROMPTS = { "Name three colours.", "Name three fruits." }
local headless = #vim.api.nvim_list_uis() == 0

-- How the script ends: headless, the text on stdout and exit status 0, or
-- the error on stderr and status 1; in an editor, a message.
local function report(text, failed)
  if not headless then
    vim.notify(text, failed and vim.log.levels.ERROR or vim.log.levels.INFO)
  elseif failed then
    io.stderr:write(text, "\n")
    vim.cmd("cquit 1")
  else
    io.stdout:write(text, "\n")
    vim.cmd("qall!")
  end
end

-- fn, reporting its error instead of raising it: headless, an error left
-- to Neovim would leave it running with nobody to quit it. The report goes
-- to the main loop, since fn may run in a libuv callback.
local function guarded(fn)
  return function(...)
    local ok, err = pcall(fn, ...)
    if not ok then vim.schedule(function() report(tostring(err), true) end) end
  end
end

local function start()
  local openai = require("openai")
  local client = openai.new() -- OPENAI_API_KEY, OPENAI_BASE_URL
  local replies = {}          -- replies[i]: the pieces of prompt i's reply so far
  local buf = vim.api.nvim_create_buf(true, true)
  if not headless then vim.api.nvim_set_current_buf(buf) end

  -- The buffer: each prompt, then its reply so far.
  local function render()
    local lines = {}
    for i, prompt in ipairs(PROMPTS) do
      if i > 1 then lines[#lines + 1] = "" end
      lines[#lines + 1] = "> " .. prompt
      for line in (table.concat(replies[i]) .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
    end
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  end
  -- Tasks run inside libuv callbacks, where the editor's API may not be
  -- called: they ask for a render on the main loop instead.
  local render_soon = vim.schedule_wrap(render)

  local function complete(i)
    local stream, failure = client.chat.completions.create {
      model = os.getenv("OPENAI_MODEL") or "gpt-4o-mini",
      messages = { { role = "user", content = PROMPTS[i] } },
      stream = true,
    }
    if not stream then error(failure, 0) end
    while true do
      local chunk, err = stream:next() -- waits by yielding: the editor goes on
      if err then error(err, 0) end
      if chunk == nil then break end
      local choice = chunk.choices[1]
      if choice and type(choice.delta.content) == "string" then
        table.insert(replies[i], choice.delta.content)
        render_soon()
      end
    end
  end

  local tasks = {}
  for i = 1, #PROMPTS do
    replies[i] = {}
    tasks[i] = openai.spawn(complete, i)
  end
  render()

  local ticks = 0 -- the editor's own timer, ticking while the replies stream
  local ticker = uv.new_timer()
  ticker:start(10, 10, function() ticks = ticks + 1 end)

  -- The end, once every task is done.
  local function finish()
    client:close()
    local failures = {}
    for _, task in ipairs(tasks) do
      local ok, err = pcall(task.result, task) -- raises the task's error again
      if not ok then failures[#failures + 1] = tostring(err) end
    end
    if #failures > 0 then return report(table.concat(failures, "\n"), true) end
    render()
    local lines = headless and vim.api.nvim_buf_get_lines(buf, 0, -1, false) or {}
    lines[#lines + 1] = ("-- %d replies; %d ticks of the editor's timer while they streamed"):format(#tasks, ticks)
    report(table.concat(lines, "\n"))
  end

  local io_watch = uv.new_poll(openai.pollfd())
  local wakeup = uv.new_timer()
  -- Does what is ready, then sleeps until the descriptor or the timer says
  -- there is more.
  local drive
  drive = guarded(function()
    if openai.poll(0) == 0 then
      for _, handle in ipairs { io_watch, wakeup, ticker } do handle:close() end
      vim.schedule(guarded(finish))
      return
    end
    local seconds = openai.timeout()
    if seconds then wakeup:start(math.ceil(seconds * 1000), 0, drive) else wakeup:stop() end
  end)
  io_watch:start("r", drive)
  drive()
end

guarded(start)()
