-- Self-test of the hostile server (spec/hostile/server.lua), spoken to over
-- raw luasocket TCP so the exact bytes and their timing can be checked.
-- The 5.4 run only (tools/run-tests.sh): the server is a lua5.4 process
-- whatever the runtime under test, nothing here loads openai, and this
-- file uses 5.3 operators.

local socket = require("socket")
local hostile = require("spec.helpers.hostile")
local process = require("spec.helpers.process")

---------------------------------------------------------------------------
-- A tiny raw HTTP/1.1 client
---------------------------------------------------------------------------

local function open(h, timeout)
  local s = socket.tcp()
  s:settimeout(timeout or 5)
  assert(s:connect("127.0.0.1", tonumber(h.url:match(":(%d+)$"))))
  return s
end

-- Send a request head (and body, with its Content-Length when given).
local function send(s, method, target, body, headers)
  local lines = { method .. " " .. target .. " HTTP/1.1", "Host: 127.0.0.1" }
  for _, line in ipairs(headers or {}) do lines[#lines + 1] = line end
  if body then lines[#lines + 1] = "Content-Length: " .. #body end
  assert(s:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")))
end

-- Status line and headers: { status, lines = {...}, h = {lowercase = value} }.
local function read_head(s)
  local line, err = s:receive("*l")
  if not line then return nil, err end
  local res = { status = tonumber(line:match("^HTTP/1%.1 (%d%d%d) ")), lines = {}, h = {} }
  while true do
    local l = assert(s:receive("*l"))
    if l == "" then break end
    res.lines[#res.lines + 1] = l
    local name, value = l:match("^([^:]+):%s*(.-)%s*$")
    res.h[name:lower()] = value
  end
  return res
end

-- Every HTTP chunk with its arrival time, then the trailer lines.
local function read_chunks(s)
  local chunks, times, trailer = {}, {}, {}
  while true do
    local size = tonumber(assert(s:receive("*l")):match("^(%x+)$"), 16)
    assert(size, "bad chunk size line")
    if size == 0 then break end
    chunks[#chunks + 1] = assert(s:receive(size))
    times[#times + 1] = socket.gettime()
    assert.equal("", s:receive("*l"))
  end
  while true do
    local l = assert(s:receive("*l"))
    if l == "" then break end
    trailer[#trailer + 1] = l
  end
  return chunks, times, trailer
end

-- A Content-Length response.
local function read_response(s)
  local res = assert(read_head(s))
  local n = tonumber(res.h["content-length"])
  res.body = n == 0 and "" or assert(s:receive(n))
  return res
end

local function get(s, target)
  send(s, "GET", target)
  return read_response(s)
end

-- n bytes (n a multiple of 8) without any short period.
local function pattern(n)
  local t = {}
  for i = 1, n // 8 do t[i] = string.pack("<i8", i * -7046029254386353131) end
  return table.concat(t)
end

local b64encode = require("spec.helpers.base64").standard

local function rss_kb(pid)
  return tonumber(process.read_file("/proc/" .. pid .. "/status"):match("VmRSS:%s*(%d+) kB"))
end

local function assert_same_bytes(expected, actual)
  if expected == actual then return end
  local i = 1
  while i <= #expected and expected:byte(i) == (actual or ""):byte(i) do i = i + 1 end
  error(string.format("bytes differ at offset %d (lengths %d and %d)", i - 1, #expected, #(actual or "")), 2)
end

local NOT_FOUND = '{"error":{"message":"Invalid URL (GET /v1/nope)","type":"invalid_request_error",' ..
  '"param":null,"code":null}}'

---------------------------------------------------------------------------

describe("hostile server", function()
  local h, dir

  setup(function()
    h = hostile.start()
    dir = h.dir
  end)

  teardown(function()
    h:stop()
  end)

  before_each(function()
    h:reset()
  end)

  describe("process", function()
    it("announces a loopback URL", function()
      assert.matches("^http://127%.0%.0%.1:%d+/v1$", h.base_url)
      assert.equal(h.base_url, h.url .. "/v1")
      assert.is_true(process.alive(h.pid))
    end)

    it("refuses a non-loopback host", function()
      local out, ok = process.run("lua5.4 spec/hostile/server.lua --port 0 --host 0.0.0.0 </dev/null")
      assert.is_false(ok)
      assert.matches("only %-%-host 127%.0%.0%.1", out)
    end)

    it("is gone after stop, and stop is idempotent", function()
      local h2 = hostile.start()
      local port = tonumber(h2.url:match(":(%d+)$"))
      h2:stop()
      assert.is_false(process.alive(h2.pid))
      h2:stop()
      local s = socket.tcp()
      s:settimeout(2)
      assert.is_nil(s:connect("127.0.0.1", port))
      s:close()
    end)

    it("exits once its --parent-pid is gone", function()
      -- A parent that pclose reaps: a zombie would still answer kill -0.
      local parent = assert(io.popen("echo $$; sleep 0.3"))
      local ppid = assert(tonumber(parent:read("l")))
      local out = os.tmpname()
      local pid = process.spawn("lua5.4 spec/hostile/server.lua --port 0 --parent-pid " .. ppid ..
        " >" .. process.shell_quote(out) .. " 2>/dev/null </dev/null")
      local ok, err = pcall(function()
        assert.is_true(process.wait_ready(pid, 5, function() return (process.read_file(out) or "") ~= "" end))
        parent:close()
        local deadline = socket.gettime() + 4
        while process.alive(pid) and socket.gettime() < deadline do socket.sleep(0.05) end
        assert.is_false(process.alive(pid))
      end)
      process.stop(pid)
      os.remove(out)
      assert(ok, err)
    end)
  end)

  describe("early", function()
    it("answers before the body is sent, reads it slowly and records it exactly", function()
      local size = 4 * 1024 * 1024
      local body = pattern(size)
      local s = open(h)
      local t0 = socket.gettime()
      assert(s:send("POST /v1/early/four HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n" ..
        "Content-Length: " .. size .. "\r\n\r\n"))
      -- Not one body byte sent yet: the status line must already come.
      local res = assert(read_head(s))
      assert.equal(200, res.status)
      assert.equal("text/event-stream", res.h["content-type"])
      assert.equal("chunked", res.h["transfer-encoding"])
      assert.is_nil(res.h["content-length"])
      assert.is_nil(process.read_file(dir .. "/four.body"))

      assert(s:send(body))
      local chunks, times = read_chunks(s)
      assert.same({ 'data: {"received":4194304}\n\n', "data: [DONE]\n\n" }, chunks)
      -- 300 ms before reading, then at most 1 MiB per 20 ms: >= 360 ms.
      assert.is_true(times[1] - t0 >= 0.35, "answered after " .. (times[1] - t0) .. " s")
      assert_same_bytes(body, process.read_file(dir .. "/four.body"))

      -- The connection stays usable.
      local again = get(s, "/v1/delay?ms=0")
      assert.equal(200, again.status)
      assert.equal('{"ok":true}', again.body)
      s:close()
      assert.same({ connections = 1, requests = 2 }, h:stats())
    end)

    it("records an empty body", function()
      local s = open(h)
      send(s, "POST", "/v1/early/empty", "")
      assert.equal(200, assert(read_head(s)).status)
      assert.same({ 'data: {"received":0}\n\n', "data: [DONE]\n\n" }, (read_chunks(s)))
      s:close()
      assert.equal("", process.read_file(dir .. "/empty.body"))
    end)

    it("refuses a record name that is not a plain file name, and closes", function()
      for _, name in ipairs({ "a%2Fb", "..", ".hidden" }) do
        local s = open(h)
        send(s, "POST", "/v1/early/" .. name, "")
        local res = read_response(s)
        assert.equal(400, res.status)
        assert.equal("close", res.h.connection)
        assert.equal("closed", select(2, s:receive("*l")))
        s:close()
      end
    end)

    it("answers 500 and closes without --record-dir", function()
      local h2 = hostile.start { dir = false }
      local s = open(h2)
      send(s, "POST", "/v1/early/x", "")
      local res = read_response(s)
      h2:stop()
      assert.equal(500, res.status)
      assert.equal("close", res.h.connection)
      assert.matches("record%-dir", res.body)
    end)
  end)

  describe("trickle", function()
    it("sends one byte per chunk, every_ms apart, then [DONE]", function()
      local s = open(h)
      send(s, "GET", "/v1/trickle?every_ms=10")
      local res = assert(read_head(s))
      assert.equal(200, res.status)
      assert.equal("text/event-stream", res.h["content-type"])
      local chunks, times = read_chunks(s)
      local event = 'data: {"choices":[]}\n\n'
      assert.equal(#event + 1, #chunks)
      for i = 1, #event do assert.equal(event:sub(i, i), chunks[i]) end
      assert.equal("data: [DONE]\n\n", chunks[#chunks])
      assert.is_true(times[#event] - times[1] >= 0.8 * (#event - 1) * 0.010)
      -- kept alive
      assert.equal(404, get(s, "/v1/nope").status)
      s:close()
    end)

    it("repeats text and cuts it to bytes", function()
      local s = open(h)
      send(s, "GET", "/v1/trickle?bytes=7&every_ms=0&text=ab%0A")
      read_head(s)
      assert.same({ "a", "b", "\n", "a", "b", "\n", "a", "data: [DONE]\n\n" }, (read_chunks(s)))
      s:close()
    end)

    it("answers 400 to a malformed parameter", function()
      local s = open(h)
      local res = get(s, "/v1/trickle?bytes=-1")
      assert.equal(400, res.status)
      assert.matches("bytes", res.body)
      s:close()
    end)
  end)

  describe("ping", function()
    it("sends the pings every_ms apart, then the event and [DONE]", function()
      local s = open(h)
      local t0 = socket.gettime()
      send(s, "GET", "/v1/ping?count=3&every_ms=50")
      read_head(s)
      local chunks, times = read_chunks(s)
      assert.same({ ": ping\n\n", ": ping\n\n", ": ping\n\n",
        'data: {"id":"after-pings","choices":[]}\n\n', "data: [DONE]\n\n" }, chunks)
      assert.is_true(times[1] - t0 >= 0.04)
      assert.is_true(times[3] - times[1] >= 0.08)
      s:close()
    end)
  end)

  describe("slow-events", function()
    it("sends count events every_ms apart with size pad bytes", function()
      local s = open(h)
      send(s, "GET", "/v1/slow-events?count=3&every_ms=50&size=4")
      read_head(s)
      local chunks, times = read_chunks(s)
      assert.same({ 'data: {"n":1,"pad":"xxxx"}\n\n', 'data: {"n":2,"pad":"xxxx"}\n\n',
        'data: {"n":3,"pad":"xxxx"}\n\n', "data: [DONE]\n\n" }, chunks)
      assert.is_true(times[2] - times[1] >= 0.04)
      assert.is_true(times[3] - times[2] >= 0.04)
      s:close()
    end)
  end)

  describe("flood", function()
    it("sends count events of size bytes each, then [DONE]", function()
      local s = open(h)
      send(s, "GET", "/v1/flood?size=200&count=2000")
      read_head(s)
      local chunks = read_chunks(s)
      assert.equal(2001, #chunks)
      for i = 1, 2000 do
        assert.equal(200, #chunks[i])
        assert.equal(i, tonumber(chunks[i]:match('^data: {"n":(%d+),"pad":"x*"}\n\n$')))
      end
      assert.equal("data: [DONE]\n\n", chunks[2001])
      assert.equal(404, get(s, "/v1/nope").status) -- kept alive
      s:close()
    end)

    it("stays bounded in memory while the client does not read", function()
      local before = rss_kb(h.pid)
      local s = open(h)
      send(s, "GET", "/v1/flood?size=65536&count=600") -- 39 MB
      socket.sleep(0.5)
      local grown = rss_kb(h.pid) - before
      if not process.instrumented() then assert.is_true(grown < 8 * 1024, "server grew by " .. grown .. " kB") end
      -- A late reader still gets everything.
      read_head(s)
      local chunks = read_chunks(s)
      assert.equal(601, #chunks)
      assert.equal(65536, #chunks[600])
      s:close()
    end)

    it("survives a client that goes away mid-flood", function()
      local s = open(h)
      send(s, "GET", "/v1/flood?size=65536&count=100000")
      assert.equal(200, assert(read_head(s)).status)
      assert(s:receive(100000))
      s:close()
      socket.sleep(0.1)
      assert.is_true(process.alive(h.pid))
      local s2 = open(h)
      assert.equal(200, get(s2, "/v1/delay?ms=0").status)
      s2:close()
    end)
  end)

  describe("trailers", function()
    it("sends the trailer fields after the last chunk of a JSON body", function()
      local s = open(h)
      send(s, "GET", "/v1/trailers")
      local res = assert(read_head(s))
      assert.equal(200, res.status)
      assert.same({ "Content-Type: application/json", "Transfer-Encoding: chunked", "Trailer: x-trailer-test",
        "X-Request-Id: req_head" }, res.lines)
      local rest = 'b\r\n{"ok":true}\r\n0\r\nX-Trailer-Test: from-trailer\r\nX-Request-Id: req_trailer\r\n\r\n'
      assert.equal(rest, s:receive(#rest))
      assert.equal(404, get(s, "/v1/nope").status) -- kept alive
      s:close()
    end)

    it("does the same for an SSE body", function()
      local s = open(h)
      send(s, "GET", "/v1/trailers-sse")
      local res = assert(read_head(s))
      assert.equal("text/event-stream", res.h["content-type"])
      assert.equal("x-trailer-test", res.h.trailer)
      assert.equal("req_head", res.h["x-request-id"])
      local chunks, _, trailer = read_chunks(s)
      assert.same({ 'data: {"choices":[]}\n\n', "data: [DONE]\n\n" }, chunks)
      assert.same({ "X-Trailer-Test: from-trailer", "X-Request-Id: req_trailer" }, trailer)
      s:close()
    end)
  end)

  describe("hang", function()
    it("reads the request and never answers", function()
      local s = open(h, 0.5)
      send(s, "POST", "/v1/hang", '{"model":"x"}')
      local line, err = s:receive("*l")
      assert.is_nil(line)
      assert.equal("timeout", err)
      s:close()
      assert.same({ connections = 1, requests = 1 }, h:stats())
    end)
  end)

  describe("delay", function()
    it("answers after ms, with Content-Length, and keeps the connection", function()
      local s = open(h)
      local t0 = socket.gettime()
      local res = get(s, "/v1/delay?ms=300")
      assert.is_true(socket.gettime() - t0 >= 0.28)
      assert.equal(200, res.status)
      assert.equal("application/json", res.h["content-type"])
      assert.equal("11", res.h["content-length"])
      assert.equal('{"ok":true}', res.body)
      assert.equal('{"ok":true}', get(s, "/v1/delay?ms=0").body)
      s:close()
    end)
  end)

  describe("raw", function()
    local function raw(target)
      local s = open(h)
      send(s, "GET", target)
      local bytes = s:receive("*a") -- the server closes after the bytes
      s:close()
      return bytes
    end

    it("sends exactly the decoded bytes, then closes", function()
      local all = {}
      for i = 0, 255 do all[#all + 1] = string.char(i) end
      local base = "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n" .. table.concat(all)
      for extra = 0, 2 do -- every kind of padding
        local bytes = base .. ("z"):rep(extra)
        assert.equal(bytes, raw("/v1/raw?b64=" .. b64encode(bytes)))
        local escaped = b64encode(bytes):gsub("[+/=]", function(c) return string.format("%%%02X", c:byte()) end)
        assert.equal(bytes, raw("/v1/raw?b64=" .. escaped))
      end
      assert.equal("\251\255", raw("/v1/raw?b64=-_8")) -- URL-safe alphabet
    end)

    it("answers 400 to malformed base64", function()
      local s = open(h)
      assert.equal(400, get(s, "/v1/raw?b64=ab*d").status)
      assert.equal(400, get(s, "/v1/raw?b64=abcde").status)
      s:close()
    end)
  end)

  describe("anything else", function()
    it("answers an OpenAI-style 404 and keeps the connection", function()
      local s = open(h)
      local res = get(s, "/v1/nope")
      assert.equal(404, res.status)
      assert.equal("application/json", res.h["content-type"])
      assert.equal(NOT_FOUND, res.body)
      assert.equal(NOT_FOUND, get(s, "/v1/nope").body)
      s:close()
    end)
  end)

  describe("stats", function()
    it("counts connections and requests, not its own control calls", function()
      local a, b, c = open(h), open(h), open(h) -- c never sends a byte
      assert.equal(200, get(a, "/v1/delay?ms=0").status)
      assert.equal(200, get(a, "/v1/delay?ms=0").status)
      assert.equal(404, get(b, "/v1/nope").status)
      assert.same({ connections = 3, requests = 3 }, h:stats())
      assert.same({ connections = 3, requests = 3 }, h:stats())
      h:reset()
      assert.same({ connections = 0, requests = 0 }, h:stats())
      -- a kept-alive connection from before the reset counts again once used
      assert.equal(200, get(a, "/v1/delay?ms=0").status)
      assert.same({ connections = 1, requests = 1 }, h:stats())
      a:close()
      b:close()
      c:close()
    end)
  end)
end)
