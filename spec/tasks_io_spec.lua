-- Tasks making calls: many in flight from one thread, asserted by what the
-- mock saw at once (never by wall time).
local openai = require("openai")
local tasks = require("openai.tasks")
local mock = require("spec.helpers.mock")
local golden = require("spec.helpers.golden")

local KEY = "sk-test-tasks-0123456789"

describe("tasks making calls", function()
  local server, client
  local session = mock.session({ api_key = KEY }, { max_retries = 0, timeout = 10 }, function(s, c) server, client = s, c end)
  setup(session.setup)
  teardown(session.teardown)
  before_each(session.before_each)

  local function slow(n, ms)
    local list = {}
    for i = 1, n do list[i] = { delay_ms = ms, passthrough = true } end
    server:script(list)
  end

  it("16 retrieves from one thread are in flight at once, each result exact", function()
    slow(16, 300)
    local texts = { tasks.run(function()
      local started = {}
      for i = 1, 16 do started[i] = tasks.spawn(client.chat.completions.retrieve, "chatcmpl-abc123") end
      local out = {}
      for i = 1, 16 do out[i] = golden.fields(openai, started[i]:result()) end
      return (table.unpack or unpack)(out, 1, 16)
    end) }
    assert.are.equal(16, #texts)
    for i = 1, 16 do assert.are.equal(golden.FIELDS, texts[i]) end
    local _, peak = server:in_flight()
    assert.are.equal(16, peak)
  end)

  it("outside a task the same calls wait one after another", function()
    slow(3, 100)
    for _ = 1, 3 do assert(client.chat.completions.retrieve("chatcmpl-abc123")) end
    local _, peak = server:in_flight()
    assert.are.equal(1, peak)
  end)

  -- Creates a stream and reads it to its end with next() (a while loop:
  -- Lua 5.1 cannot yield across a for-loop's iterator), then closes it, so
  -- that its libcurl handle is free for the next call at once; returns the
  -- text it carried.
  local function streamed_text(params)
    local stream = assert(client.chat.completions.create(params))
    local parts = {}
    while true do
      local chunk, err = stream:next()
      assert(err == nil, err)
      if chunk == nil then break end
      local choice = chunk.choices[1]
      parts[#parts + 1] = choice and choice.delta.content or ""
    end
    stream:close()
    return table.concat(parts)
  end

  it("streams in tasks are read as their events arrive, side by side", function()
    local PARAMS = { model = "gpt-4o-mini", messages = { { role = "user", content = "one two three" } }, stream = true }
    local contents = { tasks.run(function()
      local function read_all() return streamed_text(PARAMS) end
      local a, b, c = tasks.spawn(read_all), tasks.spawn(read_all), tasks.spawn(read_all)
      return a:result(), b:result(), c:result()
    end) }
    assert.are.same({ "Echo: one two three", "Echo: one two three", "Echo: one two three" }, contents)
  end)

  it("streams and requests one after another in a task, each on the handle the one before left, stay exact", function()
    -- An ended transfer's libcurl handle serves the next one: a stream's
    -- (its own write callback, no time limit) then a request's, and back.
    local STREAM = { model = "gpt-4o-mini", messages = { { role = "user", content = "a b" } }, stream = true }
    local function streamed() return streamed_text(STREAM) end
    local got = { tasks.run(function()
      local out = {}
      for _ = 1, 3 do
        out[#out + 1] = streamed()
        out[#out + 1] = golden.fields(openai, client.chat.completions.retrieve("chatcmpl-abc123"))
      end
      local cc, err = client.chat.completions.retrieve("chatcmpl-missing")
      out[#out + 1] = tostring(cc) .. " " .. err.name
      out[#out + 1] = streamed()
      return (table.unpack or unpack)(out)
    end) }
    assert.are.same({ "Echo: a b", golden.FIELDS, "Echo: a b", golden.FIELDS, "Echo: a b", golden.FIELDS,
      "nil NotFoundError", "Echo: a b" }, got)
    assert.are.same({ requests = 8, connections = 1 }, server:stats())
  end)

  it("a retry waits on a timer: the other tasks go on meanwhile", function()
    server:script { { match = { path = "/v1/chat/completions/chatcmpl-emoji123" }, status = 500,
                      headers = { ["retry-after-ms"] = "200" }, json = { error = { message = "boom" } } } }
    local retrying = openai.new { api_key = KEY, base_url = server.base_url, max_retries = 1 }
    local order = {}
    tasks.run(function()
      local t1 = tasks.spawn(function()
        assert(retrying.chat.completions.retrieve("chatcmpl-emoji123"))
        order[#order + 1] = "retried"
      end)
      local t2 = tasks.spawn(function()
        assert(client.chat.completions.retrieve("chatcmpl-abc123"))
        order[#order + 1] = "prompt"
      end)
      t1:result()
      t2:result()
    end)
    retrying:close()
    assert.are.same({ "prompt", "retried" }, order)
  end)

  it("a cancelled task's request is aborted: the mock sees it go", function()
    slow(1, 2000)
    local t = tasks.spawn(client.chat.completions.retrieve, "chatcmpl-abc123")
    assert.is_true(require("spec.helpers.process").wait_ready(server.pid, 5, function()
      tasks.poll(0.01)
      return server:in_flight() == 1
    end))
    t:cancel()
    assert.is_true(require("spec.helpers.process").wait_ready(server.pid, 5, function()
      return server:in_flight() == 0
    end))
    local value, err = t:result()
    assert.is_nil(value)
    assert.are.equal("APIUserAbortError", err.name)
  end)

  it("pollfd is a descriptor and timeout the seconds until poll is due", function()
    slow(1, 200)
    local t = tasks.spawn(client.chat.completions.retrieve, "chatcmpl-abc123")
    local fd = tasks.pollfd()
    assert.is_true(math.type and math.type(fd) == "integer" or fd == math.floor(fd))
    local seconds = tasks.timeout()
    assert.is_true(seconds ~= nil and seconds >= 0)
    while tasks.poll(1) > 0 do end
    assert.is_true(t:done())
  end)

  local puc51 = _VERSION == "Lua 5.1" and type(jit) ~= "table"
  it("on Lua 5.1, a task waiting inside a for-loop iterator fails saying why" .. (puc51 and "" or " (5.1 only)"), function()
    if not puc51 then return end
    server:script { { status = 200, headers = { ["content-type"] = "text/event-stream" }, sse_end = "finish",
                      sse = { 'data: {"choices":[]}\n\n', { data = "data: [DONE]\n\n", delay_ms = 100 } } } }
    local t = tasks.spawn(function()
      local stream = assert(client.chat.completions.create { model = "m", messages = { { role = "user", content = "x" } }, stream = true })
      for _ in stream do end
    end)
    while tasks.poll(1) > 0 do end
    local ok, err = pcall(t.result, t)
    assert.is_false(ok)
    assert.matches("^openai: a task waited inside pcall, a metamethod or a for%-loop iterator", err)
  end)

  it("pages are walked inside a task", function()
    local ids = tasks.run(function()
      for n = 1, 3 do
        assert(client.chat.completions.create { model = "m", store = true, messages = { { role = "user", content = "p" .. n } } })
      end
      local page = assert(client.chat.completions.list { limit = 2 })
      local seen = {}
      while page do
        for _, item in ipairs(page.data) do seen[#seen + 1] = item.id end
        page = page:has_next_page() and assert(page:next_page()) or nil
      end
      return seen
    end)
    -- the fixtures the mock stores, and the three made here
    assert.is_true(#ids >= 3)
  end)
end)
