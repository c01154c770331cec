-- Hooks that run while a call waits on the network. The standalone
-- interpreter handles Ctrl-C with a debug hook set from its signal handler;
-- the client runs such a hook during its waits (spec/interrupt_spec.lua).
-- A hook may run any Lua code, so these set hooks of their own from
-- SIGALRM (spec/hooks/hooks.c) that close the client or the stream, or
-- make a call on the very connection that waits: a close is carried out
-- once the hook returns, a nested call on what waits is an error, and
-- nothing is freed under the waiting call.
local openai = require("openai")
local mock = require("spec.helpers.mock")
local process = require("spec.helpers.process")
local util = require("spec.helpers.util")

local KEY = "sk-test-hooks-0123456789"
local SLOW = { delay_ms = 400, passthrough = true }
local SLOW_EVENT = { status = 200, headers = { ["content-type"] = "text/event-stream" },
                     sse = { 'data: {"n":1}\n\n', { data = 'data: {"n":2}\n\n', delay_ms = 400 } } }
local PARAMS = { model = "m", stream = true, messages = { { role = "user", content = "hi" } } }

describe("hooks during a wait", function()
  local server, client, hooks
  setup(function()
    -- built for the runtime under test, in the Makefile's build directory of it
    local output, ok = process.run("make --no-print-directory LUA=" .. util.runtime .. " hooks-module")
    assert(ok, "make hooks-module failed:\n" .. output)
    hooks = assert(package.loadlib(util.build_dir() .. "/spec/hooks.so", "luaopen_hooks"))()
    server = mock.start { api_key = KEY }
  end)
  teardown(function() server:stop() end)
  before_each(function()
    server:reset()
    client = openai.new { api_key = KEY, base_url = server.base_url, max_retries = 0 }
  end)
  after_each(function() client:close() end)

  local golden = openai.json.decode(util.read_file("spec/fixtures/chatcmpl-abc123.json"))

  it("a hook that returns lets a request go on", function()
    server:script { SLOW }
    local ran = 0
    hooks.arm(0.1, function() ran = ran + 1 end)
    local cc = assert(client.chat.completions.retrieve("chatcmpl-abc123"))
    assert.is_true(util.same(golden, cc))
    assert.are.equal(1, ran)
  end)

  describe("in loop:poll", function()
    local core = require("openai.core")
    local function start(conn)
      return conn:start("GET", server.base_url .. "/chat/completions/chatcmpl-abc123",
        { "Authorization: Bearer " .. KEY }, nil, 5)
    end
    local function drive(p)
      local loop = core.loop()
      for _ = 1, 100 do
        if p:done() then return end
        loop:poll(1)
      end
    end

    it("a hook that returns lets the poll go on", function()
      server:script { SLOW }
      local conn, ran = core.connection(), 0
      local p = start(conn)
      hooks.arm(0.1, function() ran = ran + 1 end)
      drive(p)
      assert.are.equal(1, ran)
      local status, _, body = p:result()
      assert.are.equal(200, status)
      assert.is_true(util.same(golden, body))
      conn:close()
    end)

    it("a hook that raises ends the poll with its error; the pending goes on", function()
      server:script { SLOW }
      local conn = core.connection()
      local p = start(conn)
      hooks.arm(0.1, function() error("stop here", 0) end)
      local loop = core.loop()
      assert.has_error(function()
        for _ = 1, 100 do loop:poll(1) end
      end, "stop here")
      drive(p)
      assert.are.equal(200, (p:result()))
      conn:close()
    end)

    it("a hook that closes the connection ends its pendings as closed", function()
      server:script { SLOW }
      local conn = core.connection()
      local p = start(conn)
      hooks.arm(0.1, function() conn:close() end)
      local loop = core.loop()
      for _ = 1, 100 do
        if loop:poll(1) == 0 then break end
      end
      assert.are.same({ nil, "closed", "the client was closed" }, { p:result() })
    end)
  end)

  it("a hook that closes the client ends a waiting request with an abort", function()
    server:script { SLOW }
    hooks.arm(0.1, function() client:close() end)
    local cc, err = client.chat.completions.retrieve("chatcmpl-abc123")
    assert.is_nil(cc)
    assert.are.equal("APIUserAbortError", err.name)
    assert.are.equal("the client was closed", err.cause)
    assert.has_error(function() client.chat.completions.retrieve("chatcmpl-abc123") end,
      "openai: attempt to use a closed client")
  end)

  it("a hook that closes the stream ends its waiting read with an abort", function()
    server:script { SLOW_EVENT }
    local stream = assert(client.chat.completions.create(PARAMS))
    assert.are.same({ n = 1 }, assert(stream:next()))
    hooks.arm(0.1, function() stream:close() end)
    local chunk, err = stream:next()
    assert.is_nil(chunk)
    assert.are.equal("APIUserAbortError", err.name)
    assert.are.equal("the stream was closed", err.cause)
    assert.are.same({ nil, err }, { stream:next() })
    assert(client.chat.completions.retrieve("chatcmpl-abc123"))
  end)

  it("a hook that closes the client ends a waiting stream read with an abort", function()
    server:script { SLOW_EVENT }
    local stream = assert(client.chat.completions.create(PARAMS))
    assert(stream:next())
    hooks.arm(0.1, function() client:close() end)
    local chunk, err = stream:next()
    assert.is_nil(chunk)
    assert.are.equal("APIUserAbortError", err.name)
  end)

  it("a hook that closes the client ends a stream waiting for its response with an abort", function()
    server:script { SLOW }
    hooks.arm(0.1, function() client:close() end)
    local stream, err = client.chat.completions.create(PARAMS)
    assert.is_nil(stream)
    assert.are.equal("APIUserAbortError", err.name)
    assert.are.equal("the client was closed", err.cause)
  end)

  it("a call from a hook on the waiting connection is an error; the client stays usable", function()
    server:script { SLOW }
    hooks.arm(0.1, function() client.chat.completions.retrieve("chatcmpl-abc123") end)
    assert.has_error(function() client.chat.completions.retrieve("chatcmpl-abc123") end,
      "the connection is busy: a call on it is waiting (a call from a debug hook?)")
    assert.is_true(util.same(golden, assert(client.chat.completions.retrieve("chatcmpl-abc123"))))
  end)

  it("a read from a hook of the stream that waits is an error; the stream stays usable", function()
    server:script { SLOW_EVENT }
    local stream = assert(client.chat.completions.create(PARAMS))
    assert(stream:next())
    hooks.arm(0.1, function() stream:next() end)
    assert.has_error(function() stream:next() end,
      "the stream is busy: a read of it is waiting (a read from a debug hook?)")
    assert.are.same({ n = 2 }, assert(stream:next()))
  end)

  it("a hook may read another stream of the client while one waits", function()
    server:script { SLOW_EVENT, SLOW_EVENT }
    local a = assert(client.chat.completions.create(PARAMS))
    local b = assert(client.chat.completions.create(PARAMS))
    assert(a:next())
    local from_hook
    hooks.arm(0.1, function() from_hook = b:next() end)
    assert.are.same({ n = 2 }, assert(a:next()))
    assert.are.same({ n = 1 }, from_hook)
    assert.are.same({ n = 2 }, assert(b:next()))
  end)
end)
