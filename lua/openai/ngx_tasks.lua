-- Tasks inside nginx: nginx's light threads (ngx.thread.spawn). With the
-- cosocket transport a call there already waits without blocking the
-- worker, and nginx's own event loop drives every thread; this gives them
-- the API of openai.tasks (spawn, result, cancel, poll, run), so the same
-- code runs in a script, a frame loop and an nginx handler.
--
-- openai.tasks sends here only in the phases that allow cosockets.
local semaphore = require("ngx.semaphore")
local tasks = require("openai.tasks")

local ngx = rawget(_G, "ngx") -- set by nginx's Lua module before any of our code

local M = {}

local Task = { __name = "openai.Task" }
Task.__index = Task
Task.done = tasks.Task.done
Task.__tostring = tasks.Task.__tostring

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

-- The longest single wait on a semaphore (its milliseconds must fit the C
-- side); longer waits loop.
local WAIT_SLICE = 3600

-- poll() counts and waits for the tasks of the request (or timer) that
-- runs it: each has its own ngx.ctx table.
local scopes = setmetatable({}, { __mode = "k" }) -- ngx.ctx -> { live, ended }

local function current_scope()
  local ctx = ngx.ctx
  local scope = scopes[ctx]
  if scope == nil then
    scope = { live = 0, ended = semaphore.new(0) }
    scopes[ctx] = scope
  end
  return scope
end

-- Wakes every thread waiting on sema.
local function wake_all(sema)
  local waiting = sema and -sema:count()
  if waiting and waiting > 0 then sema:post(waiting) end
end

local function finish(task)
  task.finished = true
  task.scope.live = task.scope.live - 1
  wake_all(task.ended)
  wake_all(task.scope.ended)
end

-- The light thread's body: fn's results or error are kept for result(),
-- never raised (nginx would log a raised error as an aborted thread).
local function run(task, fn, ...)
  local results = pack(pcall(fn, ...))
  if task.finished then return end -- it cancelled itself
  if results[1] then
    task.results = { n = results.n - 1, unpack(results, 2, results.n) }
  else
    task.error = results[2]
  end
  finish(task)
end

function M.spawn(fn, ...)
  local task = setmetatable({ finished = false, scope = current_scope() }, Task)
  task.scope.live = task.scope.live + 1
  task.thread = ngx.thread.spawn(run, task, fn, ...)
  return task
end

-- Waits by yielding to nginx (any light thread may wait, not only the
-- one that spawned the task).
function Task:result()
  if not self.finished then
    if coroutine.running() == self.thread then error("openai: a task cannot wait for its own result", 2) end
    self.ended = self.ended or semaphore.new(0)
    while not self.finished do self.ended:wait(WAIT_SLICE) end
  end
  return tasks.outcome(self)
end

-- nginx lets only the thread that spawned a light thread kill it (and a
-- thread itself); from anywhere else this raises rather than leave the
-- task running while it looks cancelled. Killing the thread ends its
-- waits, and nginx closes the sockets it was waiting on.
function Task:cancel()
  if self.finished then return end
  if coroutine.running() == self.thread then
    self.cancelled = true
    finish(self)
    error(tasks.cancellation(), 0)
  end
  local ok, why = ngx.thread.kill(self.thread)
  if not ok then
    if self.finished then return end
    error(("openai: inside nginx a task can be cancelled only by the code that spawned it (ngx.thread.kill: %s)")
      :format(why), 2)
  end
  self.cancelled = true
  finish(self)
end

-- Waits at most `timeout` seconds for a task of this request to end;
-- returns how many still run. poll(0) yields for a millisecond (nginx
-- runs the other threads meanwhile), so that a loop polling with 0 never
-- spins the worker (nginx's ngx.sleep(0) yields without that wait only
-- with OpenResty's patches, which Debian's nginx lacks).
local LEAST_WAIT = 0.001

function M.poll(timeout)
  local scope = current_scope()
  if scope.live == 0 then return 0 end
  if timeout > LEAST_WAIT then
    scope.ended:wait(math.min(timeout, WAIT_SLICE))
  else
    ngx.sleep(LEAST_WAIT)
  end
  return scope.live
end

return M
