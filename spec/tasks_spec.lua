-- Tasks without I/O: the scheduler's own rules (spawn, result, errors,
-- cancel, poll, run), with waits on timers only.
local tasks = require("openai.tasks")

describe("tasks", function()
  it("spawn runs the function until its first wait; result gives its results", function()
    local log = {}
    local t = tasks.spawn(function(a, b)
      log[#log + 1] = "started " .. a
      tasks.sleep(0.01)
      log[#log + 1] = "woke"
      return a + b, "two", nil
    end, 1, 2)
    assert.are.same({ "started 1" }, log)
    assert.is_false(t:done())
    assert.are.equal("openai.Task (running)", tostring(t))
    assert.are.same({ n = 3, 3, "two", nil }, table.pack and table.pack(t:result()) or { n = select("#", t:result()), t:result() })
    assert.is_true(t:done())
    assert.are.same({ "started 1", "woke" }, log)
    assert.are.equal("openai.Task (done)", tostring(t))
  end)

  it("many tasks wait at once: they finish in the order of their timers", function()
    local order = {}
    for _, delay in ipairs { 0.06, 0.02, 0.04 } do
      tasks.spawn(function() tasks.sleep(delay) order[#order + 1] = delay end)
    end
    while tasks.poll(1) > 0 do end
    assert.are.same({ 0.02, 0.04, 0.06 }, order)
  end)

  it("poll(0) never waits and returns the tasks still running", function()
    local t = tasks.spawn(function() tasks.sleep(30) end)
    assert.are.equal(1, tasks.poll(0))
    t:cancel()
    assert.are.equal(0, tasks.poll(0))
  end)

  it("an error raised in a task is raised again by result(), as the same value", function()
    local object = { name = "APIError" }
    local t = tasks.spawn(function() tasks.sleep(0.001) error(object) end)
    local ok, err = pcall(t.result, t)
    assert.is_false(ok)
    assert.are.equal(object, err)
    local t2 = tasks.spawn(function() error("plain", 0) end)
    assert.are.same({ false, "plain" }, { pcall(t2.result, t2) })
    assert.are.equal("openai.Task (failed)", tostring(t2))
  end)

  it("cancel ends a waiting task, closes what it holds, and result() gives nil, err", function()
    local closed = 0
    local resource = { close = function() closed = closed + 1 end }
    local reached = false
    local t = tasks.spawn(function()
      tasks.hold(resource)
      tasks.sleep(30)
      reached = true
    end)
    t:cancel()
    t:cancel()
    assert.is_true(t:done())
    assert.are.equal(1, closed)
    local value, err = t:result()
    assert.is_nil(value)
    assert.are.equal("APIUserAbortError", err.name)
    assert.are.equal("the task was cancelled", err.cause)
    assert.is_false(reached)
    assert.are.equal("openai.Task (cancelled)", tostring(t))
  end)

  it("a task waits for another by result(), yielding meanwhile", function()
    local inner = tasks.spawn(function() tasks.sleep(0.02) return "inner" end)
    local other_ran = false
    local outer = tasks.spawn(function() return inner:result() .. "+outer" end)
    tasks.spawn(function() tasks.sleep(0.001) other_ran = true end)
    assert.are.equal("inner+outer", outer:result())
    assert.is_true(other_ran)
  end)

  it("run spawns and polls until the function ends", function()
    assert.are.same({ "a", "b" }, { tasks.run(function()
      local t1 = tasks.spawn(function() tasks.sleep(0.01) return "a" end)
      local t2 = tasks.spawn(function() tasks.sleep(0.005) return "b" end)
      return t1:result(), t2:result()
    end) })
  end)

  it("a task's own coroutine.yield lets the others run and resumes at the next poll", function()
    local steps = {}
    local t = tasks.spawn(function()
      steps[#steps + 1] = 1
      coroutine.yield("anything")
      steps[#steps + 1] = 2
    end)
    assert.are.same({ 1 }, steps)
    tasks.poll(0)
    assert.are.same({ 1, 2 }, steps)
    assert.is_true(t:done())
  end)

  it("outside a task, sleep blocks and wait returns false", function()
    assert.is_nil(tasks.current())
    assert.is_false(tasks.wait({ ready = function() return false end }))
  end)

  it("refuses what cannot work", function()
    assert.has_error(function() tasks.spawn(42) end, "bad argument #1 to 'spawn' (function expected, got number)")
    assert.has_error(function() tasks.poll(-1) end, "bad argument #1 to 'poll' (timeout must be a non-negative number of seconds)")
    local inside = tasks.spawn(function() return pcall(tasks.poll, 0) end)
    local ok, message = inside:result()
    assert.is_false(ok)
    assert.matches("openai.poll: called inside a task", message, 1, true)
    local waiting_on_nothing = tasks.spawn(function() tasks.wait({ ready = function() return false end }) end)
    assert.has_error(function() tasks.poll(1) end, "openai.poll: every task waits for another task: none can go on")
    waiting_on_nothing:cancel()
  end)
end)
