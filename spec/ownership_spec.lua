-- Who owns which bytes, against a server that misbehaves on purpose
-- (spec/hostile/server.lua): request bodies still being uploaded after
-- create() has returned the stream, streams read in interleaved patterns,
-- and trailers after the body.
local openai = require("openai")
local hostile = require("spec.helpers.hostile")
local process = require("spec.helpers.process")

local KEY = "sk-test-ownership-0123456789"
local MiB = 1024 * 1024

-- Resident memory of this process, in bytes.
local function rss()
  local status = assert(process.read_file("/proc/self/status"))
  return tonumber(status:match("VmRSS:%s*(%d+) kB")) * 1024
end

-- `size` bytes of text that never repeats within a few MB, so a stray
-- byte anywhere shows.
local function varied_text(size)
  local parts, state, alphabet = {}, 12345, "abcdefghijklmnopqrstuvwxyz0123456789 "
  local piece = {}
  for i = 1, size do
    state = (state * 1103515245 + 12345) % 2147483648
    local k = state % #alphabet + 1
    piece[#piece + 1] = alphabet:sub(k, k)
    if #piece == 4096 or i == size then
      parts[#parts + 1] = table.concat(piece)
      piece = {}
    end
  end
  return table.concat(parts)
end

describe("ownership", function()
  local server, dir
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. process.shell_quote(dir)))
    server = hostile.start { record_dir = dir }
  end)
  teardown(function()
    server:stop()
    os.execute("rm -rf " .. process.shell_quote(dir))
  end)

  local function client_for(mode)
    return openai.new { api_key = KEY, base_url = server.base_url .. "/" .. mode, max_retries = 0 }
  end

  for _, case in ipairs { { name = "body4m", size = 4 * MiB }, { name = "body40m", size = 40 * MiB } } do
    it(("a stream goes on uploading its %d MB body after create() returns; the server gets every byte"):format(case.size // MiB),
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
        local received = assert(process.read_file(dir .. "/" .. case.name .. ".body"))
        assert.are.equal(#expected, #received)
        assert.is_true(received == expected, "the body the server received differs")
        client:close()
      end)
  end

  it("two streams read alternately, one with unread events, hold only their unread events", function()
    -- 16 kB events, one a millisecond on each stream.
    local client = client_for("slow-events?size=16000&count=3000&every_ms=1")
    local a = assert(client.chat.completions.create { model = "m", stream = true, messages = {} })
    local b = assert(client.chat.completions.create { model = "m", stream = true, messages = {} })
    -- Waiting for a's events also reads b's: from here on b's queue always
    -- holds a few unread events, never none.
    for i = 1, 5 do assert.are.equal(i, assert(a:next()).n) end
    collectgarbage("collect")
    local before = rss()
    local peak = before
    for i = 1, 2995 do
      assert.are.equal(i + 5, assert(a:next()).n)
      assert.are.equal(i, assert(b:next()).n)
      if i % 500 == 0 then
        collectgarbage("collect")
        peak = math.max(peak, rss())
      end
    end
    assert.is_nil(a:next())
    for i = 2996, 3000 do assert.are.equal(i, assert(b:next()).n) end
    assert.is_nil(b:next())
    -- 2 x 48 MB went through; what stays is a few unread events and the
    -- collector's slack.
    assert.is_true(peak - before < 8 * MiB, ("memory grew by %.1f MB"):format((peak - before) / MiB))
    client:close()
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
