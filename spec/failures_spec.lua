-- The failure kinds of openai.core (conn:request, conn:stream and
-- stream:read return nil, kind, message) and what the Lua layer makes of
-- them: which error, and whether the call is retried. The connection is a
-- scripted stand-in, so each kind can be produced on demand.
local openai = require("openai")
local client_core = require("openai.client")
local util = require("spec.helpers.util")

local KEY = "sk-test-failures-0123456789"

-- A stand-in for a client's core Connection: each request() or stream()
-- plays the next scripted step (a function returning what the C method
-- would) and logs the retry count it was sent with.
local function scripted_client(steps, opts)
  local options = { api_key = KEY, base_url = "http://127.0.0.1:9/v1", max_retries = 2 }
  for key, value in pairs(opts or {}) do options[key] = value end
  local client = openai.new(options)
  local state = client_core.state_of(client)
  state.transports.curl:close()
  local fake = { attempts = {}, closed = false }
  local function play(_, _, _, headers)
    local count
    for _, line in ipairs(headers) do count = count or line:match("^X%-Stainless%-Retry%-Count: (%d+)$") end
    fake.attempts[#fake.attempts + 1] = count
    local step = steps[#fake.attempts]
    assert(step, "no scripted step for attempt " .. #fake.attempts)
    return step(client)
  end
  fake.request, fake.stream = play, play
  function fake.close() fake.closed = true end
  function fake.sleep(_, seconds) require("openai.core").sleep(seconds) end
  state.transports.curl = fake
  return client, fake
end

local function fail(kind, message)
  return function() return nil, kind, message end
end

local function ok()
  return 200, { ["x-request-id"] = "req_ok" }, { id = "chatcmpl-ok", object = "chat.completion" }
end

local function server_error()
  return 500, { ["retry-after-ms"] = "1" }, { error = { message = "boom" } }
end

-- A stand-in for a core Stream that fails on its first read.
local function failing_stream(kind, message)
  return function()
    local raw = { read = function() return nil, kind, message end, close = function() end }
    return 200, { ["x-request-id"] = "req_stream" }, raw
  end
end

local STREAM_PARAMS = { model = "m", messages = {}, stream = true }

local function retrieve(client)
  return client.chat.completions.retrieve("chatcmpl-x")
end

local function assert_error(err, name, message, cause)
  assert.are.equal(openai.Error, getmetatable(err))
  assert.are.same({ name = name, message = message, cause = cause }, {
    name = err.name, message = err.message, cause = err.cause })
  assert.is_nil(err.status)
end

-- Garbage with a finalizer: `collected[label]` turns true when a full
-- collection finalizes it. The collector is stopped meanwhile, so only an
-- explicit collectgarbage("collect") does.
local collected = {}
local function garbage(label)
  collected[label] = false
  util.garbage(function() collected[label] = true end)
end

describe("failure kinds of the C core", function()
  before_each(function() collectgarbage("stop") end)
  after_each(function() collectgarbage("restart") end)

  describe("config: a local configuration problem", function()
    it("is an APIConnectionError with the C message as its cause, not retried", function()
      local client, fake = scripted_client { fail("config", "the proxy from https_proxy is not a valid proxy URL"), ok }
      local cc, err = retrieve(client)
      assert.is_nil(cc)
      assert_error(err, "APIConnectionError", "Connection error.", "the proxy from https_proxy is not a valid proxy URL")
      assert.is_true(err:is("APIConnectionError"))
      assert.are.same({ "0" }, fake.attempts)
    end)

    it("is not retried for a stream either, and ends a stream that was reading", function()
      local client, fake = scripted_client { fail("config", "bad proxy"), ok }
      local _, err = client.chat.completions.create(STREAM_PARAMS)
      assert_error(err, "APIConnectionError", "Connection error.", "bad proxy")
      assert.are.same({ "0" }, fake.attempts)

      client = scripted_client { failing_stream("config", "bad proxy") }
      local stream = assert(client.chat.completions.create(STREAM_PARAMS))
      local c, read_err = stream:next()
      assert.is_nil(c)
      assert_error(read_err, "APIConnectionError", "Connection error.", "bad proxy")
    end)
  end)

  describe("fd_limit: out of file descriptors", function()
    it("collects garbage once and retries at once, without using a retry", function()
      local client, fake = scripted_client({
        fail("fd_limit", "Too many open files"),
        function() assert.is_true(collected.before, "no full collection before the retry") return ok() end,
      }, { max_retries = 0 })
      garbage("before")
      local cc, err = retrieve(client)
      assert.is_nil(err)
      assert.are.equal("chatcmpl-ok", cc.id)
      assert.are.same({ "0", "0" }, fake.attempts)
    end)

    it("returns a second fd_limit of the same call as an APIConnectionError, after one collection", function()
      local client, fake = scripted_client {
        fail("fd_limit", "Too many open files"),
        function()
          garbage("during")
          return nil, "fd_limit", "Too many open files"
        end,
      }
      local _, err = retrieve(client)
      assert_error(err, "APIConnectionError", "Connection error.", "Too many open files")
      assert.are.same({ "0", "0" }, fake.attempts)
      assert.is_false(collected.during, "a second full collection ran")
    end)

    it("keeps counting the ordinary retries around it", function()
      local client, fake = scripted_client({ server_error, fail("fd_limit", "Too many open files"), ok }, { max_retries = 1 })
      assert(retrieve(client))
      assert.are.same({ "0", "1", "1" }, fake.attempts)
    end)

    it("is retried the same way when a stream starts", function()
      local client, fake = scripted_client({ fail("fd_limit", "Too many open files"), failing_stream("fd_limit", "out of fds") },
        { max_retries = 0 })
      local stream = assert(client.chat.completions.create(STREAM_PARAMS))
      assert.are.same({ "0", "0" }, fake.attempts)
      local _, err = stream:next()
      assert_error(err, "APIConnectionError", "Connection error.", "out of fds")
    end)

    it("returns APIUserAbortError when a finalizer closed the client during the collection", function()
      local client = scripted_client { fail("fd_limit", "Too many open files"), ok }
      util.garbage(function() client:close() end)
      local _, err = retrieve(client)
      assert_error(err, "APIUserAbortError", "Request was aborted.", "the client was closed")
    end)
  end)

  describe("closed", function()
    it("is an APIUserAbortError with the C message as its cause, not retried", function()
      local client, fake = scripted_client { fail("closed", "the connection was closed"), ok }
      local _, err = retrieve(client)
      assert_error(err, "APIUserAbortError", "Request was aborted.", "the connection was closed")
      assert.is_true(err:is("APIError"))
      assert.is_false(err:is("APIConnectionError"))
      assert.are.same({ "0" }, fake.attempts)
    end)

    it("from a stream's read() ends the stream with APIUserAbortError", function()
      local client = scripted_client { failing_stream("closed", "the stream was closed") }
      local stream = assert(client.chat.completions.create(STREAM_PARAMS))
      local _, err = stream:next()
      assert_error(err, "APIUserAbortError", "Request was aborted.", "the stream was closed")
      assert.are.same({ nil, err }, { stream:final() })
    end)
  end)

  describe("a client closed between attempts", function()
    it("makes the call return APIUserAbortError instead of raising", function()
      local client, fake = scripted_client {
        function(self)
          self:close() -- as a finalizer running during the retry wait would
          return server_error()
        end,
        ok,
      }
      local ok_, cc, err = pcall(retrieve, client)
      assert.is_true(ok_, tostring(cc))
      assert.is_nil(cc)
      assert_error(err, "APIUserAbortError", "Request was aborted.", "the client was closed")
      assert.are.same({ "0" }, fake.attempts)
      assert.is_true(fake.closed)
    end)

    it("while a call that started on a closed client still raises", function()
      local client, fake = scripted_client { ok }
      client:close()
      assert.has_error(function() retrieve(client) end, "openai: attempt to use a closed client")
      assert.are.same({}, fake.attempts)
    end)
  end)

  it("keeps retrying connection failures and timeouts, and not too_large or a kind it does not know", function()
    local client, fake = scripted_client { fail("connection", "refused"), fail("timeout", "slow"), ok }
    assert(retrieve(client)) -- after two backoffs, about 1.1 s
    assert.are.same({ "0", "1", "2" }, fake.attempts)
    for _, kind in ipairs { "too_large", "something_new" } do
      client, fake = scripted_client { fail(kind, "why"), ok }
      local _, err = retrieve(client)
      assert_error(err, "APIConnectionError", "Connection error.", "why")
      assert.are.same({ "0" }, fake.attempts, kind)
    end
  end)
end)
