-- openai.core's primitives for many calls from one thread: conn:start
-- (a Pending), conn:stream_start with stream:head() and stream:read(false),
-- and the Lua state's Loop (core.loop(): poll, fd, timeout) that drives
-- them. Concurrency is asserted by what the mock saw, never by wall time.
local core = require("openai.core")
local mock = require("spec.helpers.mock")
local util = require("spec.helpers.util")

local KEY = "sk-test-loop-0123456789"
local AUTH = { "Authorization: Bearer " .. KEY }

-- luaposix's poll(2), where the runtime has it (Debian's lua-posix).
local has_posix, posix = pcall(require, "posix")
if not (has_posix and type(posix.poll) == "function") then posix = nil end

-- Drives the loop until pred() holds (or nothing is in progress and it
-- still does not); bounded so that a bug fails rather than hangs.
local function drive_until(loop, pred)
  for _ = 1, 2000 do
    if pred() then return true end
    loop:poll(0.05)
  end
  return pred()
end

local function all_done(pendings)
  return function()
    for _, p in ipairs(pendings) do
      if not p:done() then return false end
    end
    return true
  end
end

-- Whether the mock has received n requests since its reset (what a test
-- before left in flight there does not count).
local function arrived(server, n)
  return function() return #server:requests() >= n end
end

-- Waits until the mock sees no request in flight (it saw them drop).
local function mock_idle(server)
  for _ = 1, 200 do
    if (server:in_flight()) == 0 then return true end
    core.sleep(0.02)
  end
  return false
end

describe("core.loop", function()
  local server, connection, url, loop

  setup(function()
    server = mock.start { api_key = KEY }
    url = server.base_url .. "/chat/completions/chatcmpl-abc123"
  end)
  teardown(function() server:stop() end)
  before_each(function()
    server:reset()
    connection = core.connection()
    loop = core.loop()
  end)
  after_each(function() connection:close() end)

  it("is one Loop per Lua state", function()
    assert.are.equal(loop, core.loop())
    assert.matches("^openai%.Loop %(", tostring(loop))
    assert.are.equal("number", type(loop:fd()))
    assert.are.equal(0, loop:poll(0))
    assert.is_nil(loop:timeout())
    assert.has_error(function() loop:poll(-1) end)
  end)

  describe("conn:start", function()
    it("has 16 requests in flight at once on one connection, each result exact", function()
      local golden = core.json_decode(util.read_file("spec/fixtures/chatcmpl-abc123.json"))
      local blocking = util.pack(connection:request("GET", url, AUTH, nil, 5, true, true))
      assert.are.equal(200, blocking[1])
      assert.is_true(util.same(golden, blocking[3]))
      server:reset()
      local script = {}
      for i = 1, 16 do script[i] = { passthrough = true, delay_ms = 300 } end
      server:script(script)
      local pendings = {}
      for i = 1, 16 do pendings[i] = connection:start("GET", url, AUTH, nil, 10) end
      assert.matches("^openai%.Pending %(in progress%)$", tostring(pendings[1]))
      assert.is_false(pendings[1]:done())
      assert.is_true(drive_until(loop, all_done(pendings)))
      assert.are.equal(0, loop:poll(0))
      local now, most = server:in_flight()
      assert.are.equal(0, now)
      assert.are.equal(16, most)
      local ids = {}
      for i, p in ipairs(pendings) do
        assert.matches("^openai%.Pending %(done%)$", tostring(p))
        local r = util.pack(p:result())
        assert.are.equal(4, r.n)
        assert.are.equal(200, r[1])
        assert.is_false(r[2])
        assert.is_true(util.same(golden, r[3]))
        assert.is_true(util.same(blocking[3], r[3]))
        assert.matches("^req_%x+$", r[4])
        ids[r[4]] = i
        assert.matches("^openai%.Pending %(taken%)$", tostring(p))
        assert.is_true(p:done())
        assert.has_error(function() p:result() end, "the result was already taken")
      end
      local distinct = 0
      for _ in pairs(ids) do distinct = distinct + 1 end
      assert.are.equal(16, distinct)
    end)

    it("raises on result() before the request is done", function()
      server:script { { passthrough = true, delay_ms = 200 } }
      local p = connection:start("GET", url, AUTH, nil, 5)
      assert.has_error(function() p:result() end, "the request is still in progress")
      assert.is_true(drive_until(loop, function() return p:done() end))
      assert.are.equal(200, (p:result()))
    end)

    it("drives two connections with one loop", function()
      local other = core.connection()
      local script = {}
      for i = 1, 8 do script[i] = { passthrough = true, delay_ms = 300 } end
      server:script(script)
      local pendings = {}
      for i = 1, 4 do
        pendings[#pendings + 1] = connection:start("GET", url, AUTH, nil, 10)
        pendings[#pendings + 1] = other:start("GET", url, AUTH, nil, 10)
      end
      assert.are.equal(8, loop:poll(0))
      assert.is_true(drive_until(loop, all_done(pendings)))
      local _, most = server:in_flight()
      assert.are.equal(8, most)
      for _, p in ipairs(pendings) do
        local status, headers, body = p:result()
        assert.are.same({ 200, false, "chatcmpl-abc123" }, { status, headers, body.id })
      end
      other:close()
    end)

    it("gives failures in the forms of conn:request", function()
      local refused = "http://127.0.0.1:" .. mock.free_port() .. "/v1/models"
      server:script {
        { status = 500, json = { error = { message = "boom" } }, headers = { ["x-request-id"] = "req_500" } },
        { passthrough = true, delay_ms = 2000 },
      }
      local failed = connection:start("GET", url, AUTH, nil, 5)
      local slow = connection:start("GET", url, AUTH, nil, 0.3)
      local nowhere = connection:start("GET", refused, AUTH, nil, 5)
      assert.is_true(drive_until(loop, all_done { failed, slow, nowhere }))

      local status, headers, body = failed:result()
      assert.are.equal(500, status)
      assert.are.equal("req_500", headers["x-request-id"])
      assert.are.same({ error = { message = "boom" } }, body)

      local r = util.pack(slow:result())
      assert.are.same({ 3, nil, "timeout" }, { r.n, r[1], r[2] })
      assert.are.equal("string", type(r[3]))

      local blocking = util.pack(connection:request("GET", refused, AUTH, nil, 5, true, true))
      r = util.pack(nowhere:result())
      assert.are.same({ 3, nil, "connection" }, { r.n, r[1], r[2] })
      assert.are.same({ blocking.n, blocking[1], blocking[2] }, { r.n, r[1], r[2] })
      -- libcurl's message says how long the attempt took: not the same twice
      local function timeless(message) return (message:gsub("after %d+ ms", "after N ms")) end
      assert.are.equal(timeless(blocking[3]), timeless(r[3]))
    end)

    -- The mock ends a request whose client went away when its delay is
    -- over; the next request comes on a new connection: the old one was
    -- dropped, not pooled.
    it("aborts a request closed mid-flight: the mock sees the connection drop", function()
      server:script { { passthrough = true, delay_ms = 600 } }
      local p = connection:start("GET", url, AUTH, nil, 10)
      assert.is_true(drive_until(loop, arrived(server, 1)))
      p:close()
      p:close() -- idempotent
      assert.is_true(p:done())
      assert.matches("^openai%.Pending %(closed%)$", tostring(p))
      assert.are.same({ nil, "closed", "the request was closed" }, { p:result() })
      assert.are.equal(0, loop:poll(0))
      assert.is_true(mock_idle(server))
      -- the connection goes on, on a new socket
      local r = util.pack(connection:request("GET", url, AUTH, nil, 5, true, true))
      assert.are.equal(200, r[1], tostring(r[3]))
      local log = server:requests()
      assert.are.equal(2, #log)
      assert.are_not.equal(log[1].connection, log[2].connection)
    end)

    it("reports closed for the pendings of a closed connection", function()
      server:script { { passthrough = true, delay_ms = 600 }, { passthrough = true, delay_ms = 600 } }
      local a = connection:start("GET", url, AUTH, nil, 10)
      local b = connection:start("GET", url, AUTH, nil, 10)
      assert.is_true(drive_until(loop, arrived(server, 2)))
      connection:close()
      assert.is_true(a:done() and b:done())
      assert.are.same({ nil, "closed", "the client was closed" }, { a:result() })
      assert.are.same({ nil, "closed", "the client was closed" }, { b:result() })
      assert.are.equal(0, loop:poll(0))
      assert.is_true(mock_idle(server))
      assert.are.same({ nil, "closed", "the client was closed" }, { connection:start("GET", url, AUTH, nil, 5) })
    end)

    it("lets results be collected with their pendings, and the connection before them", function()
      server:script { { passthrough = true, delay_ms = 100 } }
      local p = connection:start("GET", url, AUTH, nil, 5)
      assert.is_true(drive_until(loop, function() return p:done() end))
      p = nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      server:script { { passthrough = true, delay_ms = 2000 } }
      local c = core.connection()
      c:start("GET", url, AUTH, nil, 5)
      assert.are.equal(1, loop:poll(0))
      c = nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert.are.equal(0, loop:poll(0))
      assert.is_true(mock_idle(server))
    end)

    it("makes the loop's descriptor readable when a response arrives", function()
      server:script { { passthrough = true, delay_ms = 300 } }
      local p = connection:start("GET", url, AUTH, nil, 5)
      assert.are.equal("number", type(loop:timeout()))
      assert.is_true(drive_until(loop, arrived(server, 1)))
      if posix then
        local fds = { [loop:fd()] = { events = { IN = true } } }
        assert.are.equal(0, posix.poll(fds, 0))
        assert.are.equal(1, posix.poll(fds, 5000))
        assert.is_true(fds[loop:fd()].revents.IN)
      end
      assert.is_true(drive_until(loop, function() return p:done() end))
      assert.are.equal(200, (p:result()))
      assert.is_nil(loop:timeout())
    end)

    it("shares the connection with blocking calls", function()
      server:script { { passthrough = true, delay_ms = 300 } }
      local p = connection:start("GET", url, AUTH, nil, 5)
      assert.are.equal(200, (connection:request("GET", url, AUTH, nil, 5, true, true)))
      assert.is_true(drive_until(loop, function() return p:done() end))
      assert.are.equal(200, (p:result()))
    end)
  end)

  describe("conn:stream_start", function()
    local function sse_script(pieces, extra)
      local r = { status = 200, headers = { ["content-type"] = "text/event-stream" }, sse = pieces, sse_end = "finish" }
      for k, v in pairs(extra or {}) do r[k] = v end
      return r
    end

    local function start(timeout)
      return connection:stream_start("POST", server.base_url .. "/chat/completions",
        { AUTH[1], "Content-Type: application/json" }, '{"model":"m","stream":true,"messages":[]}', timeout or 5)
    end

    -- Reads every event with read(false), the loop driving in between.
    local function drain(stream)
      local got = {}
      for _ = 1, 2000 do
        local r = util.pack(stream:read(false))
        if r[1] == nil and r[2] == "pending" then
          loop:poll(0.05)
        elseif r.n == 1 and r[1] == nil then
          return got
        elseif r[1] == nil and r.n == 3 then
          got.failure = { r[2], r[3] }
          return got
        else
          got[#got + 1] = r[2]
        end
      end
      error("the stream did not end")
    end

    local function head(stream)
      local r
      assert.is_true(drive_until(loop, function()
        r = util.pack(stream:head())
        return not (r[1] == nil and r[2] == "pending")
      end))
      return r
    end

    it("returns the stream at once; head() then read(false) while poll drives several", function()
      local script = {}
      for i = 1, 3 do
        script[i] = sse_script({ { data = "data: a" .. i .. "\n\n", delay_ms = 100 }, { data = "data: b" .. i .. "\n\n", delay_ms = 100 } },
          { delay_ms = 200 })
      end
      server:script(script)
      local streams = {}
      for i = 1, 3 do streams[i] = start() end
      assert.matches("^openai%.Stream %(open%)$", tostring(streams[1]))
      assert.are.same({ nil, "pending" }, { streams[1]:head() })
      assert.has_error(function() streams[1]:read(false) end, "the stream's head has not been taken: call head() first")
      for i = 1, 3 do
        local r = head(streams[i])
        assert.are.equal(3, r.n)
        assert.are.equal(200, r[1])
        assert.are.equal("text/event-stream", r[2]["content-type"])
        assert.are.equal(streams[i], r[3])
        assert.has_error(function() streams[i]:head() end, "the stream's head was already taken")
      end
      local _, most = server:in_flight()
      assert.are.equal(3, most)
      local seen = {}
      for i = 1, 3 do seen[i] = drain(streams[i]) end
      -- the mock answers in the order the requests reach it
      local which = {}
      for i = 1, 3 do
        local n = assert(seen[i][1]:match("^a(%d)$"))
        assert.are.same({ "a" .. n, "b" .. n }, seen[i])
        which[n] = true
      end
      assert.are.same({ ["1"] = true, ["2"] = true, ["3"] = true }, which)
      assert.are.equal(0, loop:poll(0))
    end)

    it("gives another status's whole body from head(), as conn:stream does", function()
      server:script { { status = 429, json = { error = { message = "slow down" } }, delay_ms = 100 } }
      local s = start()
      local r = head(s)
      assert.are.equal(429, r[1])
      assert.are.same({ error = { message = "slow down" } }, r[3])
      assert.matches("^openai%.Stream %(closed%)$", tostring(s))
    end)

    it("times out waiting for the head with only the loop driving", function()
      server:script { sse_script({ "data: late\n\n" }, { delay_ms = 3000 }) }
      local s = start(0.3)
      assert.are.equal("number", type(loop:timeout()))
      local r = head(s)
      assert.are.same({ 3, nil, "timeout", "no response within 0.300 s" }, { r.n, r[1], r[2], r[3] })
    end)

    it("times out on silence between events with only the loop driving", function()
      server:script { sse_script({ "data: first\n\n" }, { sse_end = "stall" }) }
      local s = start(0.3)
      assert.are.equal(200, head(s)[1])
      local got = drain(s)
      assert.are.same({ "first" }, { got[1] })
      assert.are.same({ "timeout", "no data within 0.300 s" }, got.failure)
    end)

    it("ready() tells when head() and read(false) would answer, driving nothing itself", function()
      server:script { sse_script({ { data = "data: one\n\n", delay_ms = 200 } }, { delay_ms = 100 }) }
      local s = start()
      assert.is_false(s:ready())
      -- the head reaches the socket, but only the loop reads it
      assert.is_true(drive_until(loop, function() return s:ready() end))
      assert.are.equal(200, s:head())
      assert.is_false(s:ready())
      assert.is_true(drive_until(loop, function() return s:ready() end))
      assert.are.same({ n = 2, nil, "one" }, util.pack(s:read(false)))
      assert.is_true(drive_until(loop, function() return s:ready() end))
      assert.are.same({ n = 1 }, util.pack(s:read(false)))
      s:close()
      assert.is_true(s:ready()) -- a closed stream answers at once
    end)

    it("a stream paused with 256 KiB unread, read only when ready(), reaches its end", function()
      -- 600 events of 1 KiB arrive at once: more than the stream holds
      -- unread, so it pauses, and receives again as its events are read.
      local pieces, payload = {}, ("x"):rep(1024)
      for i = 1, 600 do pieces[i] = "data: " .. i .. payload .. "\n\n" end
      server:script { sse_script({ table.concat(pieces) }) }
      local s = start()
      assert.is_true(drive_until(loop, function() return s:ready() end))
      assert.are.equal(200, s:head())
      local count = 0
      assert.is_true(drive_until(loop, function()
        while s:ready() do
          local r = util.pack(s:read(false))
          if r.n == 1 then return true end
          count = count + 1
          assert.are.equal(count .. payload, r[2])
        end
        return false
      end))
      assert.are.equal(600, count)
    end)

    it("pending:ready() is pending:done(), what a task waits for", function()
      server:script { { delay_ms = 100, passthrough = true } }
      local p = connection:start("GET", server.base_url .. "/chat/completions/chatcmpl-abc123", AUTH, nil, 5)
      assert.is_false(p:ready())
      assert.is_true(drive_until(loop, function() return p:ready() end))
      assert.is_true(p:done())
      assert.are.equal(200, (p:result()))
    end)

    it("reports closed after its connection closes, and closes idempotently", function()
      server:script { sse_script({ "data: x\n\n" }, { delay_ms = 3000 }) }
      local s = start()
      assert.are.same({ nil, "pending" }, { s:head() })
      connection:close()
      assert.are.same({ nil, "closed", "the stream was closed" }, { s:head() })
      s:close()
      s:close()
      assert.are.equal(0, loop:poll(0))
    end)
  end)
end)
