-- Lua 5.4's to-be-closed variables: a client or a stream in a `<close>`
-- variable is closed when its scope ends, and a loop over stream:iter()
-- closes the stream when it breaks. Lua 5.4 syntax: only the 5.4 run loads
-- this file (tools/run-tests.sh).
local openai = require("openai")
local mock = require("spec.helpers.mock")

local KEY = "sk-test-close-0123456789"
local PARAMS = { model = "gpt-4o-mini", messages = { { role = "user", content = "one two three" } }, stream = true }

describe("to-be-closed variables", function()
  local server, client
  local session = mock.session({ api_key = KEY }, { max_retries = 0 }, function(s, c) server, client = s, c end)
  setup(session.setup)
  teardown(session.teardown)
  before_each(session.before_each)

  local function assert_aborted(stream)
    assert.are.equal("openai.ChatCompletionStream (finished)", tostring(stream))
    local chunk, err = stream:next()
    assert.is_nil(chunk)
    assert.are.equal("APIUserAbortError", err.name)
    assert.are.equal("the stream was closed", err.cause)
  end

  it("close a client at the end of its scope", function()
    local kept
    do
      local scoped <close> = openai.new { api_key = KEY, base_url = server.base_url }
      kept = scoped
      assert(scoped.chat.completions.retrieve("chatcmpl-abc123"))
      assert.are.equal("openai.Client (" .. server.base_url .. ")", tostring(kept))
    end
    assert.are.equal("openai.Client (" .. server.base_url .. ") closed", tostring(kept))
    assert.has_error(function() kept.chat.completions.retrieve("chatcmpl-abc123") end,
      "openai: attempt to use a closed client")
  end)

  it("close a stream at the end of its scope", function()
    local kept
    do
      local stream <close> = assert(client.chat.completions.create(PARAMS))
      kept = stream
      assert(stream:next())
      assert.are.equal("openai.ChatCompletionStream (open)", tostring(kept))
    end
    assert_aborted(kept)
    assert(client.chat.completions.retrieve("chatcmpl-abc123"))
  end)

  it("close a stream when a loop over stream:iter() breaks", function()
    local broken = assert(client.chat.completions.create(PARAMS))
    for _ in broken:iter() do break end
    assert_aborted(broken)
    assert(client.chat.completions.retrieve("chatcmpl-abc123"))
  end)

  it("close a stream when an error leaves a loop over stream:iter()", function()
    local stream = assert(client.chat.completions.create(PARAMS))
    local ok, err = pcall(function()
      for _ in stream:iter() do error("stop here", 0) end
    end)
    assert.are.same({ false, "stop here" }, { ok, err })
    assert_aborted(stream)
  end)
end)
