-- Tasks: coroutines whose calls wait by yielding instead of blocking, so
-- that many calls are in flight at once from one thread. Outside a task
-- every call blocks as before. The transports ask `tasks.wait` to wait for
-- them: inside a task it yields to the scheduler, which resumes the task
-- once what it waits for is ready; `poll` drives the I/O of every task of
-- this Lua state (the C core's loop: an epoll set over the libcurl
-- sockets) and resumes them.
local core = require("openai.core")
local compat = require("openai.compat")
local errors = require("openai.errors")
local transports = require("openai.transport")

local M = {}

-- Inside nginx, where cosockets may be used, tasks are nginx's light
-- threads (openai.ngx_tasks): nginx's own loop drives them.
local nginx_tasks
local function in_nginx()
  if not transports.cosockets_allowed() then return nil end
  nginx_tasks = nginx_tasks or require("openai.ngx_tasks")
  return nginx_tasks
end

local Task = { __name = "openai.Task" }
Task.__index = Task
M.Task = Task

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

-- What a task yields when it waits for the scheduler; anything else it
-- yields (a task's own coroutine.yield) just lets the others run.
local WAITING = setmetatable({}, { __name = "openai.tasks.waiting" })

local by_coroutine = setmetatable({}, { __mode = "k" }) -- coroutine -> task
local live = {}        -- task -> true, until it ends
local live_count = 0
-- Who waits for what, so that a poll asks only the waiters whose wait may
-- be over: a transfer of the C core (a request, a stream) is known by its
-- wake key, which the loop lists once the transfer moved on; the others
-- (timers, other tasks, a task's own yield) are asked on every poll.
local by_key = {}      -- wake key -> the task waiting on that transfer
local unkeyed = {}     -- task -> true: waits on something else, or is ready
local loop             -- core.loop(), made on first use

local function get_loop()
  if loop == nil and core.loop then loop = core.loop() end
  return loop
end

-- The task running now, or nil (outside any task, or inside a coroutine
-- of the task's own making: calls there block).
function M.current()
  local co = coroutine.running()
  return co and by_coroutine[co]
end

-- Something a task waits for: `ready()` is true once the task may go on;
-- `deadline` (monotonic seconds), when set, is when it will be.
local function wait_for(task, waitable)
  task.waiting = waitable
  local key = waitable.wake_key and waitable:wake_key()
  if key ~= nil and by_key[key] == nil then
    by_key[key] = task
    task.key = key
  else
    unkeyed[task] = true
  end
  coroutine.yield(WAITING)
  task.waiting = nil
end

-- Forgets what the task waited for (it runs again, or has ended).
local function unregister(task)
  if task.key ~= nil then
    by_key[task.key] = nil
    task.key = nil
  end
  unkeyed[task] = nil
end

-- Inside a task: yields until waitable:ready(), returning true. Outside
-- any task: returns false at once (the caller waits its own way).
function M.wait(waitable)
  local task = M.current()
  if task == nil then return false end
  if waitable:ready() then return true end
  wait_for(task, waitable)
  return true
end

-- The wait between retries: a timer inside a task, a sleep outside.
function M.sleep(seconds)
  local task = M.current()
  if task == nil then return core.sleep(seconds) end
  local at = core.monotonic() + seconds
  wait_for(task, { deadline = at, ready = function() return core.monotonic() >= at end })
end

-- Keeps `resource` (anything with close()) with the running task, if any:
-- closed when the task fails or is cancelled, so its transfers and sockets
-- go with it. Returns the resource.
function M.hold(resource)
  local task = M.current()
  if task ~= nil then task.held[resource] = true end
  return resource
end

local function release_held(task)
  for resource in pairs(task.held) do pcall(resource.close, resource) end
  task.held = setmetatable({}, { __mode = "k" })
end

local function finish(task)
  task.finished = true
  task.waiting = nil
  unregister(task)
  if live[task] then
    live[task] = nil
    live_count = live_count - 1
  end
end

-- Runs the task until it waits or ends.
local function step(task)
  unregister(task)
  local results = pack(coroutine.resume(task.co))
  if coroutine.status(task.co) ~= "dead" then
    if results[2] ~= WAITING then -- its own yield: ready again at once
      task.waiting = nil
      unkeyed[task] = true
    end
    return
  end
  finish(task)
  if results[1] then
    task.results = { n = results.n - 1, unpack(results, 2, results.n) }
  elseif task.cancelled then
    task.results = nil
  else
    task.error = results[2]
    if compat.runtime == "lua" and compat.runtime_version == "5.1"
      and tostring(task.error):find("attempt to yield across", 1, true) then
      task.error = "openai: a task waited inside pcall, a metamethod or a for-loop iterator, which Lua 5.1"
        .. " cannot yield across (use stream:next() in a while loop, and the nil, err results): "
        .. tostring(task.error)
    end
    release_held(task)
  end
end

-- Starts fn(...) as a task and returns its handle; fn runs at once until
-- its first wait.
function M.spawn(fn, ...)
  if type(fn) ~= "function" and not (getmetatable(fn) and getmetatable(fn).__call) then
    error(("bad argument #1 to 'spawn' (function expected, got %s)"):format(type(fn)), 2)
  end
  local nginx = in_nginx()
  if nginx then return nginx.spawn(fn, ...) end
  local args = pack(...)
  local task = setmetatable({ held = setmetatable({}, { __mode = "k" }), finished = false }, Task)
  task.co = coroutine.create(function() return fn(unpack(args, 1, args.n)) end)
  by_coroutine[task.co] = task
  live[task] = true
  live_count = live_count + 1
  step(task)
  return task
end

function Task:done()
  return self.finished
end

function Task:__tostring()
  local state = self.cancelled and "cancelled" or self.error ~= nil and "failed"
    or self.finished and "done" or "running"
  return ("openai.Task (%s)"):format(state)
end

function M.cancellation()
  return errors.aborted("the task was cancelled")
end

-- Aborts the task: its transfers are closed and it never resumes;
-- result() then returns nil and an APIUserAbortError. Idempotent; no
-- effect on a task that has ended.
function Task:cancel()
  if self.finished then return end
  self.cancelled = true
  release_held(self)
  if M.current() == self then error(M.cancellation(), 0) end
  finish(self)
  if coroutine.close then pcall(coroutine.close, self.co) end -- runs its <close> variables
end

-- What result() gives for an ended task: its results, its error raised
-- again, or nil, err for a cancelled one.
function M.outcome(task)
  if task.cancelled then return nil, M.cancellation() end
  if task.error ~= nil then error(task.error, 0) end
  return unpack(task.results, 1, task.results.n)
end

-- The task's results: inside a task it waits by yielding, outside it
-- drives every task until this one ends. An error raised in the task is
-- raised again here; a cancelled task gives nil, err.
function Task:result()
  if not self.finished then
    local current = M.current()
    if current == self then error("openai: a task cannot wait for its own result", 2) end
    if current ~= nil then
      wait_for(current, { ready = function() return self.finished end })
    else
      while not self.finished do M.poll(math.huge) end
    end
  end
  return M.outcome(self)
end

-- The earliest deadline of the waiting tasks (monotonic seconds), or nil.
-- (A transfer's deadlines are the loop's: loop:timeout().)
local function earliest_deadline()
  local earliest
  for task in pairs(unkeyed) do
    local waiting = task.waiting
    if waiting == nil then return core.monotonic() end -- ready to run again
    if waiting.deadline and (earliest == nil or waiting.deadline < earliest) then earliest = waiting.deadline end
  end
  return earliest
end

local function add_if_ready(ready, task)
  local waiting = task.waiting
  if waiting == nil or waiting:ready() then ready[#ready + 1] = task end
end

-- Resumes every task whose wait is over; returns how many. Asks the
-- waiters of the transfers the loop woke, and those waiting on anything
-- else; every waiter when the loop may have missed one.
local function resume_ready()
  local ready = {}
  local l = get_loop()
  local keys, rescan
  if l then keys, rescan = l:woken() end
  if l == nil or rescan then
    for task in pairs(live) do add_if_ready(ready, task) end
  else
    for i = 1, #keys do
      local task = by_key[keys[i]]
      if task ~= nil then add_if_ready(ready, task) end
    end
    for task in pairs(unkeyed) do add_if_ready(ready, task) end
  end
  for _, task in ipairs(ready) do
    if not task.finished then step(task) end
  end
  return #ready
end

-- Seconds until poll() must be called anyway (0: now), or nil when no
-- task waits on a timer or a transfer.
function M.timeout()
  if in_nginx() then return nil end -- nginx's loop drives the I/O
  local seconds
  local deadline = earliest_deadline()
  if deadline then seconds = math.max(0, deadline - core.monotonic()) end
  local l = get_loop()
  local io = l and l:timeout()
  if io and (seconds == nil or io < seconds) then seconds = io end
  return seconds
end

-- The file descriptor that becomes readable when poll() has work (nil
-- until the C core's loop exists).
function M.pollfd()
  if in_nginx() then return nil end
  local l = get_loop()
  return l and l:fd()
end

-- Performs the ready I/O of every task, resumes those whose calls
-- completed, and waits at most `timeout` seconds (0: never) for more.
-- Returns the number of tasks still running.
function M.poll(timeout)
  if M.current() ~= nil then error("openai.poll: called inside a task (a task waits by calling the client)", 2) end
  timeout = timeout or 0
  if type(timeout) ~= "number" or timeout ~= timeout or timeout < 0 then
    error("bad argument #1 to 'poll' (timeout must be a non-negative number of seconds)", 2)
  end
  local nginx = in_nginx()
  if nginx then return nginx.poll(timeout) end
  local l = get_loop()
  if l then l:poll(0) end
  if resume_ready() > 0 or live_count == 0 or timeout == 0 then return live_count end
  local wait = M.timeout()
  if wait == nil then
    if l == nil or l:timeout() == nil then
      error("openai.poll: every task waits for another task: none can go on", 2)
    end
    wait = timeout
  end
  if wait > timeout then wait = timeout end
  if l then
    l:poll(wait)
  elseif wait > 0 then
    core.sleep(wait)
  end
  resume_ready()
  return live_count
end

-- Spawns fn(...) and polls until it ends; returns its results (raises its
-- error).
function M.run(fn, ...)
  if M.current() ~= nil then error("openai.run: called inside a task (spawn a task, or call fn directly)", 2) end
  return M.spawn(fn, ...):result()
end

return M
