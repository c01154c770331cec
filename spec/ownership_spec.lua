-- Who owns which bytes, against a server that misbehaves on purpose
-- (spec/hostile/server.lua): request bodies still being uploaded after
-- create() has returned the stream, streams read in interleaved patterns,
-- and trailers after the body.
local openai = require("openai")
local hostile = require("spec.helpers.hostile")
local process = require("spec.helpers.process")
local util = require("spec.helpers.util")

local KEY = "sk-test-ownership-0123456789"
local MiB = 1024 * 1024

-- `size` bytes of text in which no 64 kB block repeats (each starts with
-- its number), so a stray or misplaced byte anywhere shows.
local function varied_text(size)
  local letters, state, alphabet = {}, 12345, "abcdefghijklmnopqrstuvwxyz0123456789 "
  for i = 1, 65536 do
    state = (state * 1103515245 + 12345) % 2147483648
    local k = state % #alphabet + 1
    letters[i] = alphabet:sub(k, k)
  end
  local block, parts, length = table.concat(letters), {}, 0
  while length < size do
    parts[#parts + 1] = ("%08x"):format(#parts) .. block
    length = length + 8 + #block
  end
  return table.concat(parts):sub(1, size)
end

describe("ownership", function()
  local server
  setup(function() server = hostile.start() end)
  teardown(function() server:stop() end)

  local function client_for(mode)
    return openai.new { api_key = KEY, base_url = server.base_url .. "/" .. mode, max_retries = 0 }
  end

  -- The 40 MB upload runs on Lua 5.4 only: it is the 4 MB one's C code
  -- path, ten times longer (3 s), whatever the runtime.
  local uploads = { { name = "body4m", size = 4 * MiB } }
  if util.runtime == "lua5.4" then uploads[2] = { name = "body40m", size = 40 * MiB } end
  for _, case in ipairs(uploads) do
    it(("a stream goes on uploading its %d MB body after create() returns; the server gets every byte"):format(case.size / MiB),
      function()
        local client = client_for("early/" .. case.name)
        local expected, stream
        do
          local params = { model = "gpt-4o-mini", stream = true,
                           messages = { { role = "user", content = varied_text(case.size) } } }
          expected = openai.json.encode(params)
          -- The server answers before it reads the body, and reads it slowly.
          stream = assert(client.chat.completions.create(params))
        end
        -- Everything the call made is garbage now; collect it and fill the
        -- freed memory, as a busy program would.
        collectgarbage("collect")
        collectgarbage("collect")
        local filler = {}
        for i = 1, 48 do filler[i] = string.rep(string.char(64 + i % 26), MiB + i) end
        local event = assert(stream:next())
        assert.are.same({ received = #expected }, event)
        assert.is_nil(stream:next())
        local received = assert(process.read_file(server.dir .. "/" .. case.name .. ".body"))
        assert.are.equal(#expected, #received)
        assert.is_true(received == expected, "the body the server received differs")
        client:close()
      end)
  end

  it("two streams read alternately, one with unread events, hold only their unread events", function()
    -- 16 kB events, one a millisecond on each stream; waiting for the first
    -- stream's events also reads the second's. In a process of its own, so
    -- that its resident memory is this test's.
    local output, ok = process.run(("%s spec/memory/child.lua interleave %s 3000"):format(util.lua_prefix(),
      process.shell_quote(server.base_url .. "/slow-events?size=16000&count=3000&every_ms=1")))
    assert.is_true(ok, output)
    local grew = tonumber(output:match("^events 3000 grew (%d+)\n"))
    assert(grew, output)
    -- 2 x 48 MB went through; what stays is a few unread events and the
    -- collector's slack.
    if not process.instrumented() then
      assert.is_true(grew < 8 * 1024, ("memory grew by %d kB"):format(grew))
    end
  end)

  it("trailers after a response body are not taken for headers", function()
    local client = client_for("trailers")
    local result = assert(client.chat.completions.retrieve("chatcmpl-x"))
    assert.are.same({ ok = true }, result)
    assert.are.equal("req_head", result._request_id)
    client:close()
  end)

  it("trailers after a stream are not taken for headers", function()
    local client = client_for("trailers-sse")
    local stream = assert(client.chat.completions.create { model = "m", stream = true, messages = {} })
    assert.are.equal("req_head", stream._request_id)
    assert.is_nil(stream.headers["x-trailer-test"])
    assert.are.same({ choices = {} }, assert(stream:next()))
    assert.is_nil(stream:next())
    assert.are.equal("req_head", stream.headers["x-request-id"])
    client:close()
  end)
end)
