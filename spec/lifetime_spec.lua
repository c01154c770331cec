-- Objects that outlive their client, clients collected mid-stream, closing
-- while iterating, and exiting with a transfer open.
local openai = require("openai")
local mock = require("spec.helpers.mock")
local util = require("spec.helpers.util")

local KEY = "sk-test-lifetime-0123456789"
local PARAMS = { model = "m", messages = { { role = "user", content = "one two three four" } }, stream = true }

describe("lifetimes", function()
  local server
  setup(function() server = mock.start { api_key = KEY } end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function new_client()
    return openai.new { api_key = KEY, base_url = server.base_url, max_retries = 0 }
  end

  it("a stream keeps working after its client is garbage-collected", function()
    local client = new_client()
    local stream = assert(client.chat.completions.create(PARAMS))
    assert.are.equal("assistant", assert(stream:next()).choices[1].delta.role)
    client = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    local cc = assert(stream:final())
    assert.are.equal("Echo: one two three four", cc.choices[1].message.content)
    stream = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
  end)

  it("a client and its open stream can be collected together", function()
    for _ = 1, 10 do
      local client = new_client()
      local stream = assert(client.chat.completions.create(PARAMS))
      assert(stream:next())
    end
    collectgarbage()
    collectgarbage()
    assert.are.equal(10, server:stats().requests)
  end)

  it("close() during iteration ends the loop without an error; next() then tells it was aborted", function()
    local client = new_client()
    local stream = assert(client.chat.completions.create(PARAMS))
    local seen = 0
    for _ in stream do
      seen = seen + 1
      stream:close()
    end
    assert.are.equal(1, seen)
    local chunk, err = stream:next()
    assert.is_nil(chunk)
    assert.are.equal("APIUserAbortError", err.name)
    assert.are.equal("Request was aborted.", err.message)
    assert.are.equal("the stream was closed", err.cause)
    assert(client.chat.completions.retrieve("chatcmpl-abc123"))
    client:close()
  end)

  it("error objects outlive their client", function()
    local client = new_client()
    local _, err = client.chat.completions.retrieve("chatcmpl-gone")
    client:close()
    client = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.are.equal("NotFoundError", err.name)
    assert.are.equal("NotFoundError: 404 No chat completion found with id 'chatcmpl-gone'. [request "
      .. err.request_id .. "]", tostring(err))
  end)

  it("a page outlives a collected client and still fetches the next page", function()
    local client = new_client()
    local page = assert(client.chat.completions.list { limit = 2 })
    client = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.is_true(page:has_next_page())
    local second = assert(page:next_page())
    assert.are.equal("list", second.object)
  end)

  it("a page of a closed client raises when it fetches", function()
    local client = new_client()
    local page = assert(client.chat.completions.list { limit = 2 })
    client:close()
    assert.are.equal(2, #page.data)
    assert.has_error(function() page:next_page() end, "openai: attempt to use a closed client")
  end)

  for _, exit in ipairs { "os.exit(0)", "os.exit(0, true)" } do
    it("exits cleanly with " .. exit .. " while a stream is open", function()
      server:script { { status = 200, headers = { ["content-type"] = "text/event-stream" },
                        sse = { 'data: {"choices":[]}\n\n' }, sse_end = "stall" } }
      local output, code = util.run_lua(([[
        local openai = require("openai")
        local client = openai.new { api_key = %q, base_url = %q, max_retries = 0 }
        local stream = assert(client.chat.completions.create { model = "m", messages = {}, stream = true })
        assert(stream:next())
        io.write("open\n")
        %s
      ]]):format(KEY, server.base_url, exit), {})
      assert.are.equal("open\n", output)
      assert.are.equal(0, code)
    end)
  end

  it("a connection closed before its C call (by a finalizer, say) ends that call as aborted, not with an error", function()
    local core = require("openai.core")
    local connection = core.connection()
    connection:close()
    local url = server.base_url .. "/chat/completions/chatcmpl-abc123"
    assert.are.same({ nil, "closed", "the client was closed" }, { connection:request("GET", url, {}, nil, 5, true) })
    assert.are.same({ nil, "closed", "the client was closed" }, { connection:stream("GET", url, {}, nil, 5) })
    assert.are.equal(0, server:stats().requests)
  end)
end)
