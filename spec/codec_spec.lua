-- The transport-free codecs of openai.core that a transport written in Lua
-- uses (src/codec/): core.http_head, a response head read off a socket, and
-- core.sse_decoder, the server-sent-events decoder of the libcurl
-- transport as an object.
-- Run: busted spec/codec_spec.lua (.busted puts the build of the runtime on cpath).
local core = require("openai.core")
local hostile = require("spec.helpers.hostile")
local util = require("spec.helpers.util")

local function is_integer(n)
  if math.type then return math.type(n) == "integer" end
  return type(n) == "number" and n == math.floor(n)
end

local b64 = require("spec.helpers.base64").url

describe("core.http_head", function()
  -- The headers of a 200 head with these header lines.
  local function headers_of(...)
    local status, headers = core.http_head("HTTP/1.1 200 OK\r\n" .. table.concat({ ... }, "\r\n") .. "\r\n\r\n")
    assert.are.equal(200, status, headers)
    return headers
  end

  local function refused(block, message)
    local status, err = core.http_head(block)
    assert.is_nil(status)
    assert.are.equal(message, err)
  end

  it("reads a typical head", function()
    local status, headers = core.http_head("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      .. "Content-Length: 2\r\nx-request-id: req_123\r\nopenai-processing-ms: 412\r\n\r\n")
    assert.are.equal(200, status)
    assert.is_true(is_integer(status))
    assert.are.same({ ["content-type"] = "application/json", ["content-length"] = "2",
      ["x-request-id"] = "req_123", ["openai-processing-ms"] = "412" }, headers)
    assert.is_nil(getmetatable(headers))
  end)

  it("takes lines ended by LF alone, and CRLF and LF mixed", function()
    assert.are.same({ 429, { ["retry-after"] = "2", a = "b" } },
      { core.http_head("HTTP/1.1 429 Too Many Requests\nRetry-After: 2\na: b\n\n") })
    assert.are.same({ 200, { a = "1", b = "2" } }, { core.http_head("HTTP/1.1 200 OK\nA: 1\r\nB: 2\n\r\n") })
  end)

  it("takes a head without its blank line", function()
    assert.are.same({ 200, { a = "b" } }, { core.http_head("HTTP/1.1 200 OK\r\nA: b\r\n") })
    assert.are.same({ 200, {} }, { core.http_head("HTTP/1.1 200 OK\r\n") })
    assert.are.same({ 200, {} }, { core.http_head("HTTP/1.1 200 OK\r\n\r\n") })
  end)

  it("folds names to lower case", function()
    assert.are.same({ ["content-type"] = "text/Plain", ["x-request-id"] = "Req_AbC" },
      headers_of("Content-TYPE: text/Plain", "X-Request-ID: Req_AbC"))
  end)

  it("joins a repeated header's values with \", \", in order", function()
    assert.are.same({ ["set-cookie"] = "a=1, b=2, c=3", vary = "x, " },
      headers_of("Set-Cookie: a=1", "Vary: x", "set-cookie: b=2", "SET-COOKIE: c=3", "vary:"))
  end)

  it("joins many repeats (linear work)", function()
    local n = 20000
    local status, headers = core.http_head("HTTP/1.1 200 OK\r\n" .. ("A: xy\r\n"):rep(n) .. "\r\n")
    assert.are.equal(200, status)
    assert.are.equal(util.rep("xy", n, ", "), headers.a)
  end)

  it("removes the blanks around values, and only those", function()
    assert.are.same({ a = "two  words", b = "tight", location = "http://h:1/p?q=a:b" },
      headers_of("A: \t two  words \t ", "B:tight", "Location: http://h:1/p?q=a:b"))
  end)

  it("keeps an empty value", function()
    assert.are.same({ ["x-empty"] = "", ["x-blank"] = "" }, headers_of("X-Empty:", "X-Blank: \t "))
  end)

  it("keeps bytes beyond ASCII and other controls in values", function()
    assert.are.same({ ["x-a"] = "caf\195\169\1\127" }, headers_of("X-A: caf\195\169\1\127"))
  end)

  it("takes HTTP/1.0", function()
    assert.are.same({ 404, { a = "b" } }, { core.http_head("HTTP/1.0 404 Not Found\r\nA: b\r\n\r\n") })
  end)

  it("takes a status line without a reason phrase", function()
    assert.are.same({ 204, {} }, { core.http_head("HTTP/1.1 204\r\n\r\n") })
    assert.are.same({ 204, {} }, { core.http_head("HTTP/1.1 204 \r\n\r\n") })
    assert.are.same({ 503, {} }, { core.http_head("HTTP/1.1 503 Service  Unavailable (really)\n") })
  end)

  it("takes every token character in names", function()
    local name = "!#$%&'*+-.^_`|~09AZaz"
    assert.are.same({ [name:lower()] = "v" }, headers_of(name .. ": v"))
  end)

  it("refuses a missing or invalid status line", function()
    refused("", "missing status line")
    refused("\r\nA: b\r\n\r\n", "missing status line")
    for _, line in ipairs { "HTTP/2 200 OK", "HTTP/1.2 200 OK", "HTTP/1.1 20 OK", "HTTP/1.1 2000 OK",
                            "HTTP/1.1 2x0 OK", "http/1.1 200 OK", "HTTP/1.1  200 OK", "HTTP/1.1 200OK",
                            "HTTP/1.1\t200 OK", "ICY 200 OK", "A: b" } do
      refused(line .. "\r\n\r\n", "invalid status line")
    end
  end)

  it("refuses a line not ended by CRLF or LF", function()
    refused("HTTP/1.1 200 OK", "line 1: not ended by CRLF or LF")
    refused("HTTP/1.1 200 OK\r\nA: b", "line 2: not ended by CRLF or LF")
    refused("HTTP/1.1 200 OK\r\nA: b\r", "line 2: not ended by CRLF or LF")
  end)

  it("refuses a header line without ':'", function()
    refused("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "line 2: header line without ':'")
  end)

  it("refuses an empty name", function()
    refused("HTTP/1.1 200 OK\r\nA: b\r\n: value\r\n\r\n", "line 3: empty header name")
  end)

  it("refuses a name that is not a token", function()
    for _, name in ipairs { "Bad Name", "Name ", "Bad(name)", "a/b", "a@b", "caf\195\169", "a\1b", "a\"b" } do
      refused("HTTP/1.1 200 OK\r\n" .. name .. ": v\r\n\r\n", "line 2: invalid character in header name")
    end
  end)

  it("refuses obsolete line folding", function()
    refused("HTTP/1.1 200 OK\r\nA: one\r\n two\r\n\r\n", "line 3: obsolete line folding")
    refused("HTTP/1.1 200 OK\r\nA: one\r\n\ttwo\r\n\r\n", "line 3: obsolete line folding")
    refused("HTTP/1.1 200 OK\r\n A: b\r\n\r\n", "line 2: obsolete line folding")
  end)

  it("refuses NUL and bare CR inside a line", function()
    refused("HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n", "line 2: NUL byte")
    refused("HTTP/1.1 200 OK\r\nA\0: b\r\n\r\n", "line 2: NUL byte")
    refused("HTTP/1.1 200\0OK\r\n\r\n", "line 1: NUL byte")
    refused("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", "line 2: bare CR")
    refused("HTTP/1.1 200 OK\r\nA: b\r\r\n\r\n", "line 2: bare CR")
    refused("HTTP/1.1 200 OK\rA: b\r\n\r\n", "line 1: bare CR")
    refused("HTTP/1.1 200 OK\r\n\r\r\n", "line 2: bare CR")
  end)

  it("refuses bytes after the blank line", function()
    refused("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", "bytes after the end of the head")
    refused("HTTP/1.1 200 OK\r\n\r\n\r\n", "bytes after the end of the head")
    refused("HTTP/1.1 200 OK\n\nA: b\n", "bytes after the end of the head")
  end)

  it("never quotes the input in its message", function()
    local long = ("x"):rep(100000)
    for _, block in ipairs { long, "HTTP/1.1 200 OK\r\n" .. long .. " y: z\r\n\r\n",
                             "HTTP/1.1 200 OK\r\n" .. long .. "\r\n\r\n", long .. "\r\n" } do
      local status, err = core.http_head(block)
      assert.is_nil(status)
      assert.is_true(#err <= 48 and not err:find("\n") and not err:find("xxx", 1, true), err)
    end
  end)

  it("takes only a string", function()
    assert.has_error(function() core.http_head() end)
    assert.has_error(function() core.http_head({}) end)
  end)

  describe("gives the headers the libcurl transport gives", function()
    local server, conn
    setup(function()
      server = hostile.start { dir = false }
      conn = core.connection()
    end)
    teardown(function()
      if conn then conn:close() end
      if server then server:stop() end
    end)

    local HEADS = {
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: req_1\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nVary:\r\nvary: x\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 404 Not Found\nX-A: \t padded \t \nX-Empty:\nContent-Length: 0\n\n",
      "HTTP/1.0 500\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
    }
    for i, head in ipairs(HEADS) do
      it("head " .. i, function()
        local status, headers = conn:request("GET", server.url .. "/v1/raw?b64=" .. b64(head), {}, nil, 10)
        assert.is_number(status, tostring(headers))
        assert.are.same({ status, headers }, { core.http_head(head) })
      end)
    end
  end)
end)

describe("core.http_token", function()
  it("is true for HTTP tokens only", function()
    local verdicts = {}
    local texts = { "X-Request-Id", "a!#$%&'*+-.^_`|~9", "", "a b", "a:b", "a\0", "é", "(x)", 42, nil }
    for i = 1, 10 do verdicts[i] = core.http_token(texts[i]) end
    assert.are.same({ true, true, false, false, false, false, false, false, false, false }, verdicts)
  end)
end)

describe("core.sse_decoder", function()
  -- Every event the decoder has queued: { data, name } pairs.
  local function drain(d)
    local events = {}
    while true do
      local got = util.pack(d:next())
      if got[1] == nil then
        assert.are.equal(1, got.n)
        return events
      end
      assert.are.equal(2, got.n)
      events[#events + 1] = { got[1], got[2] }
    end
  end

  -- Feeds the pieces, then finishes; returns the events.
  local function decode(pieces, max)
    local d = core.sse_decoder(max)
    for _, piece in ipairs(pieces) do assert.is_true(d:feed(piece)) end
    assert.is_true(d:finish())
    local events = drain(d)
    d:close()
    return events
  end

  local SAMPLE = ": keep-alive\n\nevent: message\r\ndata: {\"a\":1}\r\n\r\n"
    .. "data: line one\rdata: line two\r\r"
    .. "data:no space\ndata:  two spaces\n\n"
    .. "id: 7\nretry: 100\nunknown: x\ndata\n\n"
    .. "event: done\ndata: [DONE]\n\n"
  local SAMPLE_EVENTS = {
    { "{\"a\":1}", "message" },
    { "line one\nline two" },
    { "no space\n two spaces" },
    { "" },
    { "[DONE]", "done" },
  }

  it("decodes a stream fed whole", function()
    assert.are.same(SAMPLE_EVENTS, decode { SAMPLE })
  end)

  it("decodes the same events with the stream cut at any byte", function()
    for i = 0, #SAMPLE do
      assert.are.same(SAMPLE_EVENTS, decode { SAMPLE:sub(1, i), SAMPLE:sub(i + 1) }, "cut at " .. i)
    end
    local bytes = {}
    for i = 1, #SAMPLE do bytes[i] = SAMPLE:sub(i, i) end
    assert.are.same(SAMPLE_EVENTS, decode(bytes))
  end)

  it("delivers an event once its blank line has come", function()
    local d = core.sse_decoder()
    assert.is_true(d:feed("data: a\n"))
    assert.is_nil(d:next())
    assert.is_true(d:feed("\n"))
    assert.are.same({ { "a" } }, drain(d))
  end)

  it("ends lines with CR, LF or CRLF", function()
    for _, text in ipairs { "data: a\rdata: b\r\r", "data: a\ndata: b\n\n", "data: a\r\ndata: b\r\n\r\n",
                            "data: a\r\ndata: b\n\r" } do
      assert.are.same({ { "a\nb" } }, decode { text })
    end
  end)

  it("takes a CRLF split across feeds as one line end", function()
    assert.are.same({ { "a\nb" } }, decode { "data: a\r", "\ndata: b\r", "\n\r", "\n" })
    assert.are.same({ { "a\nb" } }, decode { "data: a\r", "\n", "data: b\r\n", "\r", "\n" })
    -- CR, then CRLF in the next feed: two line ends
    assert.are.same({ { "a" }, { "b" } }, decode { "data: a\r", "\r", "\ndata: b\n\n" })
  end)

  it("skips comments", function()
    assert.are.same({ { "x" } }, decode { ": comment\n:\n: another\ndata: x\n: inside\n\n: after\n\n" })
  end)

  it("gives nil as the name of an event without one", function()
    local d = core.sse_decoder()
    d:feed("data: x\n\n")
    local got = util.pack(d:next())
    assert.are.equal(2, got.n)
    assert.are.equal("x", got[1])
    assert.is_nil(got[2])
  end)

  it("joins data lines with LF", function()
    assert.are.same({ { "a\n\nb\n", "e" } }, decode { "event: e\ndata: a\ndata:\ndata: b\ndata:\n\n" })
  end)

  it("keeps an event with an empty data line", function()
    assert.are.same({ { "" }, { "" }, { "", "named" } }, decode { "data:\n\ndata\n\nevent: named\ndata: \n\n" })
  end)

  it("delivers an unterminated last line and a pending event at finish()", function()
    local d = core.sse_decoder()
    assert.is_true(d:feed("data: one\n\ndata: tail"))
    assert.are.same({ { "one" } }, drain(d))
    assert.is_true(d:finish())
    assert.are.same({ { "tail" } }, drain(d))
    -- a pending event whose blank line never came
    assert.is_true(d:feed("event: e\ndata: pending\n"))
    assert.is_nil(d:next())
    assert.is_true(d:finish())
    assert.are.same({ { "pending", "e" } }, drain(d))
    -- then it goes on with another stream
    assert.is_true(d:feed("data: again\n\n"))
    assert.are.same({ { "again" } }, drain(d))
    assert.is_true(d:finish())
    assert.is_nil(d:next())
  end)

  describe("max_event_bytes", function()
    local MESSAGE = "a server-sent event exceeds the limit of 10 bytes"

    local function over(d, ...)
      assert.are.same({ nil, "too_large", MESSAGE }, { d:feed(...) })
    end

    it("takes an event of exactly max_event_bytes (name + data)", function()
      assert.are.same({ { "12345\n6789" } }, decode({ "data:12345\ndata:6789\n\n" }, 10))
      assert.are.same({ { "123\n45", "abcd" } }, decode({ "event:abcd\ndata:123\ndata:45\n\n" }, 10))
    end)

    it("refuses one byte more", function()
      over(core.sse_decoder(10), "data:12345\ndata:67890\n\n")
      over(core.sse_decoder(10), "event:abcd\ndata:123\ndata:456\n\n")
    end)

    it("caps a line at max_event_bytes too", function()
      assert.are.same({ { "x" } }, decode({ ":" .. ("c"):rep(9) .. "\ndata: x\n\n" }, 10))
      over(core.sse_decoder(10), ":" .. ("c"):rep(10) .. "\n")
      -- a line that arrives in pieces, and one not ended yet
      local d = core.sse_decoder(10)
      assert.is_true(d:feed(":ccccc"))
      over(d, "cccccc")
    end)

    it("refuses at the same point however the stream is cut", function()
      local text = "data: ok\n\ndata:12345\ndata:67890\n\n"
      for i = 0, #text do
        local d = core.sse_decoder(10)
        local a = util.pack(d:feed(text:sub(1, i)))
        local b = a[1] and util.pack(d:feed(text:sub(i + 1))) or a
        assert.are.same({ n = 3, nil, "too_large", MESSAGE }, b)
        assert.are.same({ { "ok" } }, drain(d)) -- what came complete before
      end
    end)

    it("stays failed", function()
      local d = core.sse_decoder(10)
      over(d, "data:12345678901\n\n")
      over(d, "data: ok\n\n")
      over(d, "")
      assert.are.same({ nil, "too_large", MESSAGE }, { d:finish() })
      assert.is_nil(d:next())
      assert.are.equal("openai.SseDecoder (open)", tostring(d))
    end)

    it("is 64 MiB by default", function()
      local big = ("x"):rep(1024 * 1024)
      assert.are.same({ { big } }, decode { "data:" .. big .. "\n\n" })
      -- a line longer than the limit is refused before any of it is copied
      local d = core.sse_decoder()
      assert.are.same({ nil, "too_large", "a server-sent event exceeds the limit of 67108864 bytes" },
        { d:feed(("x"):rep(64 * 1024 * 1024 + 1)) })
    end)

    it("must be a positive integer", function()
      assert.has_error(function() core.sse_decoder(1.5) end)
      assert.has_error(function() core.sse_decoder(0) end)
      assert.has_error(function() core.sse_decoder(-1) end)
      assert.has_error(function() core.sse_decoder("many") end)
      assert.has_no_error(function() core.sse_decoder(1):close() end)
    end)
  end)

  it("counts the bytes of the queued events (names and data)", function()
    local d = core.sse_decoder()
    assert.are.equal(0, d:queued())
    d:feed("event: ab\ndata: cde\n\n")
    assert.are.equal(5, d:queued())
    d:feed("data: xy\n\ndata: pending")
    assert.are.equal(7, d:queued())
    d:next()
    assert.are.equal(2, d:queued())
    d:next()
    assert.are.equal(0, d:queued())
    d:finish()
    assert.are.equal(7, d:queued())
  end)

  it("closes once, however often it is closed", function()
    local d = core.sse_decoder()
    d:feed("data: a\n\ndata: b\n\ndata: partial")
    assert.are.equal("openai.SseDecoder (open)", tostring(d))
    d:close()
    d:close()
    getmetatable(d).__gc(d)
    getmetatable(d).__close(d)
    assert.are.equal("openai.SseDecoder (closed)", tostring(d))
    assert.are.same({ nil, "closed", "the decoder is closed" }, { d:feed("data: c\n\n") })
    assert.are.same({ nil, "closed", "the decoder is closed" }, { d:finish() })
    assert.are.same({ n = 1 }, util.pack(d:next()))
    assert.are.equal(0, d:queued())
  end)

  it("closes at the end of a <close> scope (Lua 5.4)", function()
    if not util.has_close then return end
    local chunk = assert(util.load([[
      local core = ...
      local kept
      do
        local d <close> = core.sse_decoder()
        kept = d
        d:feed("data: x\n\n")
      end
      return kept
    ]], "=close"))
    assert.are.equal("openai.SseDecoder (closed)", tostring(chunk(core)))
  end)

  it("is collected with its queued events", function()
    for _ = 1, 50 do core.sse_decoder():feed(("data: " .. ("x"):rep(1000) .. "\n\n"):rep(10)) end
    collectgarbage("collect")
    collectgarbage("collect")
  end)

  it("is an openai.SseDecoder", function()
    local d = core.sse_decoder()
    assert.are.equal("openai.SseDecoder", getmetatable(d).__name)
    assert.has_error(function() d.feed({}, "data: x\n\n") end)
    assert.has_error(function() d:feed({}) end)
  end)
end)
