-- Specs of the local OpenAI mock itself, spoken to over real HTTP with
-- luasocket (raw sockets, so the exact bytes on the wire can be checked).
-- The 5.4 run only (tools/run-tests.sh): the mock is a lua5.4 process
-- whatever the runtime under test, and nothing here loads openai.

local socket = require("socket")
local cjson = require("cjson")
local mock = require("spec.helpers.mock")

local KEY = "sk-test-0123456789abcdefWXYZ"
local FIXTURE_PATH = "spec/fixtures/chatcmpl-abc123.json"

local read_file = require("spec.helpers.util").read_file

---------------------------------------------------------------------------
-- A tiny raw HTTP/1.1 client
---------------------------------------------------------------------------

local function open(m, timeout)
  local host, port = m.url:match("^http://([^:]+):(%d+)$")
  local s = socket.tcp()
  s:settimeout(timeout or 5)
  assert(s:connect(host, tonumber(port)))
  return s
end

local function has_header(list, name)
  for _, h in ipairs(list or {}) do
    if h[1]:lower() == name then return true end
  end
  return false
end

-- headers: list of {name, value}; body: string or nil.
local function send(s, method, target, headers, body)
  local lines = { method .. " " .. target .. " HTTP/1.1", "Host: 127.0.0.1" }
  for _, h in ipairs(headers or {}) do lines[#lines + 1] = h[1] .. ": " .. h[2] end
  if body and not has_header(headers, "transfer-encoding") and not has_header(headers, "content-length") then
    lines[#lines + 1] = "Content-Length: " .. #body
  end
  assert(s:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")))
end

-- Read status line and headers.  Returns a response table or nil, err.
local function read_head(s)
  local line, err = s:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/1%.1 (%d%d%d) "))
  assert(status, "bad status line: " .. line)
  local res = { status = status, headers = {}, h = {} }
  while true do
    local l = assert(s:receive("*l"))
    if l == "" then break end
    local name, value = l:match("^([^:]+):%s*(.-)%s*$")
    res.headers[#res.headers + 1] = { name, value }
    res.h[name:lower()] = value
  end
  return res
end

-- Read the body per the framing headers.  For chunked bodies `chunks` holds
-- every HTTP chunk separately; `complete` tells whether the terminating chunk
-- (or the full Content-Length) arrived.
local function read_body(s, res)
  if res.h["transfer-encoding"] == "chunked" then
    res.chunks = {}
    while true do
      local line, err = s:receive("*l")
      if not line then res.err = err break end
      local size = tonumber(line:match("^%x+"), 16)
      if size == 0 then
        repeat local l = s:receive("*l") until l == "" or l == nil
        res.complete = true
        break
      end
      local data, derr = s:receive(size)
      if not data then res.err = derr break end
      res.chunks[#res.chunks + 1] = data
      s:receive("*l")
    end
    res.body = table.concat(res.chunks)
  elseif res.h["content-length"] == "0" then
    res.body, res.complete = "", true -- luasocket's receive(0) would wait for a byte
  elseif res.h["content-length"] then
    local data, err, partial = s:receive(tonumber(res.h["content-length"]))
    res.body = data or partial
    res.err = err
    res.complete = data ~= nil
  else
    local data, err, partial = s:receive("*a")
    res.body = data or partial
    res.err = err
    res.complete = true
  end
  return res
end

local function read_response(s)
  local res, err = read_head(s)
  if not res then return nil, err end
  return read_body(s, res)
end

local function auth(key)
  return { "Authorization", "Bearer " .. (key or KEY) }
end

-- One request on a fresh connection.  opts: headers (list; default is the
-- valid Authorization header), body, keep (return the open socket too).
local function request(m, method, target, opts)
  opts = opts or {}
  local s = open(m)
  local headers = opts.headers or { auth() }
  send(s, method, target, headers, opts.body)
  local res = assert(read_response(s))
  if opts.keep then return res, s end
  s:close()
  return res
end

local function post_json(m, target, body, extra_headers)
  local headers = { auth(), { "Content-Type", "application/json" } }
  for _, h in ipairs(extra_headers or {}) do headers[#headers + 1] = h end
  return request(m, "POST", target, { headers = headers, body = body })
end

local function decode(res)
  return cjson.decode(res.body)
end

-- Parse an SSE body into its `data:` payloads.
local function sse_data(body)
  local out = {}
  for event in body:gmatch("(.-)\n\n") do
    out[#out + 1] = assert(event:match("^data: (.*)$"), "not a data event: " .. event)
  end
  return out
end

-- The exact bytes of an error body (member order matters here, so no cjson).
local function error_json(message, param, code)
  local function str(v) return v and ('"' .. v .. '"') or "null" end
  return '{"error":{"message":' .. str(message) .. ',"type":"invalid_request_error","param":' .. str(param) ..
    ',"code":' .. str(code) .. '}}'
end

local function create_body(text, extra)
  local t = { model = "gpt-4o-mini", messages = { { role = "user", content = text } } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return cjson.encode(t)
end

---------------------------------------------------------------------------

describe("mock server", function()
  local m

  setup(function()
    m = mock.start({ api_key = KEY })
  end)

  teardown(function()
    m:stop()
  end)

  before_each(function()
    m:reset()
  end)

  describe("process", function()
    it("announces its URL and PID", function()
      assert.matches("^http://127%.0%.0%.1:%d+/v1$", m.base_url)
      assert.equal(m.base_url, m.url .. "/v1")
      assert.equal("number", type(m.pid))
    end)

    it("refuses a non-loopback host", function()
      local ok, how, code = os.execute("lua5.4 mock/server.lua --host 0.0.0.0 >/dev/null 2>&1")
      assert.is_nil(ok)
      assert.equal("exit", how)
      assert.is_true(code ~= 0)
    end)

    it("exits on SIGTERM and stop is idempotent", function()
      local m2 = mock.start()
      local res = request(m2, "GET", "/v1/chat/completions/chatcmpl-abc123")
      assert.equal(200, res.status)
      m2:stop()
      assert.is_nil(io.open("/proc/" .. m2.pid .. "/cmdline") and
        read_file("/proc/" .. m2.pid .. "/stat"):match("^%d+ %b() ([^Z])"))
      m2:stop()
      local s = socket.tcp()
      s:settimeout(2)
      assert.is_nil(s:connect("127.0.0.1", tonumber(m2.url:match(":(%d+)$"))))
      s:close()
    end)

    it("accepts any non-empty key when started without --api-key", function()
      local m2 = mock.start()
      local res = request(m2, "GET", "/v1/chat/completions/chatcmpl-abc123", { headers = { auth("whatever") } })
      m2:stop()
      assert.equal(200, res.status)
    end)

    it("free_port gives a port where nothing listens", function()
      local port = mock.free_port()
      assert.is_true(port > 0 and port < 65536)
      local s = socket.tcp()
      s:settimeout(2)
      local ok, err = s:connect("127.0.0.1", port)
      s:close()
      assert.is_nil(ok)
      assert.equal("connection refused", err)
    end)
  end)

  describe("golden fixture", function()
    it("is served byte for byte", function()
      local res = request(m, "GET", "/v1/chat/completions/chatcmpl-abc123")
      local expected = read_file(FIXTURE_PATH)
      assert.equal(766, #expected)
      assert.equal(200, res.status)
      assert.equal("application/json", res.h["content-type"])
      assert.equal("766", res.h["content-length"])
      assert.equal(expected, res.body)
    end)

    it("keeps seed and temperature exact after an update", function()
      local res = post_json(m, "/v1/chat/completions/chatcmpl-abc123", '{"metadata":{"topic":"ai"}}')
      assert.equal(200, res.status)
      assert.truthy(res.body:find('"seed":4944116822809979520', 1, true))
      assert.truthy(res.body:find('"temperature":1.0', 1, true))
      assert.truthy(res.body:find('"metadata":{"topic":"ai"}', 1, true))
      local again = request(m, "GET", "/v1/chat/completions/chatcmpl-abc123")
      assert.equal(res.body, again.body)
      assert.truthy(again.body:find("silence\226\128\148", 1, true)) -- U+2014 kept raw
    end)

    it("the invented fixtures are served as stored", function()
      for _, id in ipairs({ "chatcmpl-tool123", "chatcmpl-emoji123", "chatcmpl-refusal123" }) do
        local res = request(m, "GET", "/v1/chat/completions/" .. id)
        assert.equal(200, res.status)
        assert.equal(read_file("mock/fixtures/" .. id .. ".json"), res.body)
      end
      local tool = decode(request(m, "GET", "/v1/chat/completions/chatcmpl-tool123"))
      assert.equal("get_current_weather", tool.choices[1].message.tool_calls[1]["function"].name)
      local emoji = decode(request(m, "GET", "/v1/chat/completions/chatcmpl-emoji123"))
      assert.truthy(emoji.choices[1].message.content:find("🎉", 1, true))
      assert.truthy(emoji.choices[1].message.content:find("🚀", 1, true))
      local refusal = decode(request(m, "GET", "/v1/chat/completions/chatcmpl-refusal123"))
      assert.equal(cjson.null, refusal.choices[1].message.content)
      assert.equal("I'm sorry, but I can't help with that request.", refusal.choices[1].message.refusal)
    end)
  end)

  describe("headers", function()
    it("gives every response a distinct x-request-id", function()
      local seen = {}
      local targets = { "/v1/chat/completions/chatcmpl-abc123", "/v1/nope", "/v1/chat/completions/x" }
      for i = 1, 9 do
        local res = request(m, "GET", targets[i % 3 + 1], { headers = i == 9 and {} or nil })
        local id = res.h["x-request-id"]
        assert.matches("^req_" .. string.rep("%x", 32) .. "$", id)
        assert.is_nil(id:find("%u"))
        assert.is_nil(seen[id])
        seen[id] = true
      end
    end)
  end)

  describe("authentication", function()
    local NO_KEY = "You didn't provide an API key. You need to provide your API key in an Authorization header " ..
      "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) " ..
      "if you're accessing the API from your browser and are prompted for a username. You can obtain an API key " ..
      "from https://platform.openai.com/account/api-keys."

    it("rejects a missing header", function()
      local res = request(m, "GET", "/v1/chat/completions/chatcmpl-abc123", { headers = {} })
      assert.equal(401, res.status)
      assert.equal("application/json", res.h["content-type"])
      assert.equal(error_json(NO_KEY), res.body)
    end)

    it("rejects an empty bearer token", function()
      local res = request(m, "GET", "/v1/chat/completions", { headers = { { "Authorization", "Bearer " } } })
      assert.equal(401, res.status)
      assert.equal(error_json(NO_KEY), res.body)
    end)

    it("rejects a wrong key and masks it", function()
      local wrong = "sk-abcdefghijklmnopwxyz"
      local res = request(m, "GET", "/v1/chat/completions", { headers = { auth(wrong) } })
      assert.equal(401, res.status)
      assert.equal(error_json("Incorrect API key provided: sk-****************wxyz. You can find your API key at " ..
        "https://platform.openai.com/account/api-keys.", nil, "invalid_api_key"), res.body)
      assert.is_nil(res.body:find(wrong, 1, true))
    end)

    it("masks short keys completely", function()
      local res = request(m, "GET", "/v1/chat/completions", { headers = { auth("abc1234") } })
      assert.equal(401, res.status)
      assert.equal("Incorrect API key provided: *******. You can find your API key at " ..
        "https://platform.openai.com/account/api-keys.", decode(res).error.message)
    end)
  end)

  describe("not found", function()
    it("answers unknown paths with Invalid URL", function()
      local res = request(m, "GET", "/v1/whatever?x=1")
      assert.equal(404, res.status)
      assert.equal(error_json("Invalid URL (GET /v1/whatever)"), res.body)
      res = request(m, "PUT", "/v1/chat/completions/chatcmpl-abc123", { body = "{}" })
      assert.equal(error_json("Invalid URL (PUT /v1/chat/completions/chatcmpl-abc123)"), res.body)
    end)

    it("decodes the id and echoes it", function()
      local res = request(m, "GET", "/v1/chat/completions/a%2Fb%20c%25+d")
      assert.equal(404, res.status)
      assert.equal(error_json("No chat completion found with id 'a/b c%+d'."), res.body)
    end)
  end)

  describe("HTTP layer", function()
    it("serves several requests over one keep-alive connection", function()
      local s = open(m)
      for _ = 1, 2 do
        send(s, "GET", "/v1/chat/completions/chatcmpl-abc123", { auth() })
        local res = read_response(s)
        assert.equal(200, res.status)
        assert.equal(766, #res.body)
        assert.is_nil(res.h["connection"])
      end
      s:close()
      assert.same({ requests = 2, connections = 1 }, m:stats())
      local log = m:requests()
      assert.equal(1, log[1].connection)
      assert.equal(1, log[2].connection)
    end)

    it("honours Connection: close", function()
      local s = open(m)
      send(s, "GET", "/v1/chat/completions/chatcmpl-abc123", { auth(), { "Connection", "close" } })
      local res = read_response(s)
      assert.equal(200, res.status)
      assert.equal("close", res.h["connection"])
      local data, err = s:receive(1)
      assert.is_nil(data)
      assert.equal("closed", err)
      s:close()
    end)

    it("reads chunked request bodies", function()
      local s = open(m)
      local body = create_body("chunked body works")
      local framed = string.format("%x\r\n%s\r\n", 10, body:sub(1, 10)) ..
        string.format("%x;ext=1\r\n%s\r\n", #body - 10, body:sub(11)) .. "0\r\n\r\n"
      send(s, "POST", "/v1/chat/completions", { auth(), { "Transfer-Encoding", "chunked" } }, framed)
      local res = read_response(s)
      s:close()
      assert.equal(200, res.status)
      assert.equal("Echo: chunked body works", decode(res).choices[1].message.content)
      assert.equal(body, m:requests()[1].body)
    end)

    it("answers garbage with 400 and keeps serving", function()
      local s = open(m)
      assert(s:send("THIS IS NOT HTTP\r\n\r\n"))
      local res = read_response(s)
      s:close()
      assert.equal(400, res.status)
      assert.matches("^req_%x+$", res.h["x-request-id"])
      s = open(m)
      assert(s:send("GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n"))
      assert.equal(400, read_response(s).status)
      s:close()
      assert.equal(200, request(m, "GET", "/v1/chat/completions/chatcmpl-abc123").status)
    end)

    it("survives a client vanishing mid-stream", function()
      local s = open(m)
      send(s, "POST", "/v1/chat/completions", { auth(), { "X-Mock-Stream-Chunks", "200000" } },
        create_body("x", { stream = true }))
      assert.equal(200, read_head(s).status)
      assert(s:receive(1000))
      s:close()
      socket.sleep(0.1)
      assert.equal(200, request(m, "GET", "/v1/chat/completions/chatcmpl-abc123").status)
    end)

    it("serves connections concurrently", function()
      m:script({ { delay_ms = 1000, match = { path = "/v1/chat/completions/chatcmpl-tool123" } } })
      local slow = open(m)
      send(slow, "GET", "/v1/chat/completions/chatcmpl-tool123", { auth() })
      local t0 = socket.gettime()
      local fast = request(m, "GET", "/v1/chat/completions/chatcmpl-abc123")
      assert.equal(200, fast.status)
      assert.is_true(socket.gettime() - t0 < 0.7)
      assert.equal(200, read_response(slow).status)
      slow:close()
    end)
  end)

  describe("create", function()
    it("replies deterministically and echoes the raw seed", function()
      local body = '{"model":"gpt-4o-mini","seed":4944116822809979520,"metadata":{"k":"v"},' ..
        '"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[' ..
        '{"type":"text","text":"hello "},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"world"}]}]}'
      local res = post_json(m, "/v1/chat/completions", body)
      assert.equal(200, res.status)
      assert.equal("application/json", res.h["content-type"])
      assert.equal('{"id":"chatcmpl-mock1","object":"chat.completion","created":1738960611,"model":"gpt-4o-mini",' ..
        '"choices":[{"index":0,"message":{"role":"assistant","content":"Echo: hello world","refusal":null},' ..
        '"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":3,' ..
        '"total_tokens":7},"service_tier":"default","system_fingerprint":"fp_mock","metadata":{"k":"v"},' ..
        '"seed":4944116822809979520}', res.body)
      local second = decode(post_json(m, "/v1/chat/completions", create_body("again")))
      assert.equal("chatcmpl-mock2", second.id)
      assert.equal(1738960612, second.created)
      assert.same({}, second.metadata)
      assert.is_nil(second.seed)
    end)

    it("does not store unless asked", function()
      local id = decode(post_json(m, "/v1/chat/completions", create_body("a"))).id
      assert.equal(404, request(m, "GET", "/v1/chat/completions/" .. id).status)
      id = decode(post_json(m, "/v1/chat/completions", create_body("b", { store = true }))).id
      local res = request(m, "GET", "/v1/chat/completions/" .. id)
      assert.equal(200, res.status)
      assert.equal("Echo: b", decode(res).choices[1].message.content)
    end)

    it("validates model and messages", function()
      local res = post_json(m, "/v1/chat/completions", '{"messages":[{"role":"user","content":"x"}]}')
      assert.equal(400, res.status)
      assert.equal(error_json("you must provide a model parameter"), res.body)
      res = post_json(m, "/v1/chat/completions", '{"model":"m"}')
      assert.equal(400, res.status)
      assert.equal(error_json("Missing required parameter: 'messages'.", "messages", "missing_required_parameter"),
        res.body)
      res = post_json(m, "/v1/chat/completions", '{"model":"m","messages":[]}')
      assert.equal(400, res.status)
      assert.equal("messages", decode(res).error.param)
      res = post_json(m, "/v1/chat/completions", '{"model":"m","messages":"hi"}')
      assert.equal("messages", decode(res).error.param)
      res = post_json(m, "/v1/chat/completions", "{not json")
      assert.equal(400, res.status)
      assert.matches("^We could not parse the JSON body", decode(res).error.message)
    end)
  end)

  describe("list", function()
    local function list(query)
      local res = request(m, "GET", "/v1/chat/completions" .. (query or ""))
      assert.equal(200, res.status)
      return decode(res)
    end

    local function ids(page)
      local out = {}
      for i, c in ipairs(page.data) do out[i] = c.id end
      return out
    end

    before_each(function()
      for i = 1, 5 do
        post_json(m, "/v1/chat/completions", create_body("number " .. i, {
          store = true, metadata = { topic = (i % 2 == 1) and "haiku" or "prose", n = tostring(i) },
          model = (i == 5) and "gpt-4o" or "gpt-4o-mini",
        }))
      end
      post_json(m, "/v1/chat/completions", create_body("not stored"))
    end)

    it("paginates with cursors", function()
      local all, pages, after = {}, 0, nil
      repeat
        local page = list("?limit=2" .. (after and ("&after=" .. after) or ""))
        pages = pages + 1
        assert.equal("list", page.object)
        assert.equal(page.data[1].id, page.first_id)
        assert.equal(page.data[#page.data].id, page.last_id)
        for _, id in ipairs(ids(page)) do all[#all + 1] = id end
        after = page.last_id
      until not page.has_more
      assert.equal(5, pages)
      assert.same({ "chatcmpl-tool123", "chatcmpl-emoji123", "chatcmpl-refusal123", "chatcmpl-abc123",
        "chatcmpl-mock1", "chatcmpl-mock2", "chatcmpl-mock3", "chatcmpl-mock4", "chatcmpl-mock5" }, all)
    end)

    it("defaults to 20 items ascending and embeds fixtures verbatim", function()
      local res = request(m, "GET", "/v1/chat/completions")
      local page = decode(res)
      assert.equal(9, #page.data)
      assert.is_false(page.has_more)
      assert.truthy(res.body:find(read_file(FIXTURE_PATH), 1, true))
    end)

    it("orders descending", function()
      local page = list("?order=desc&limit=3")
      assert.same({ "chatcmpl-mock5", "chatcmpl-mock4", "chatcmpl-mock3" }, ids(page))
      assert.is_true(page.has_more)
      page = list("?order=desc&limit=3&after=chatcmpl-mock1")
      assert.same({ "chatcmpl-abc123", "chatcmpl-refusal123", "chatcmpl-emoji123" }, ids(page))
      page = list("?order=desc&after=chatcmpl-emoji123")
      assert.same({ "chatcmpl-tool123" }, ids(page))
      assert.is_false(page.has_more)
    end)

    it("filters by metadata and model", function()
      local page = list("?metadata%5Btopic%5D=haiku&limit=2")
      assert.same({ "chatcmpl-emoji123", "chatcmpl-mock1" }, ids(page))
      assert.is_true(page.has_more)
      page = list("?metadata%5Btopic%5D=haiku&limit=2&after=" .. page.last_id)
      assert.same({ "chatcmpl-mock3", "chatcmpl-mock5" }, ids(page))
      assert.is_false(page.has_more)
      page = list("?metadata%5Btopic%5D=haiku&metadata%5Bn%5D=3")
      assert.same({ "chatcmpl-mock3" }, ids(page))
      page = list("?model=gpt-4o")
      assert.same({ "chatcmpl-mock5" }, ids(page))
      page = list("?metadata%5Btopic%5D=none")
      assert.same({}, page.data)
      assert.equal(cjson.null, page.first_id)
      assert.equal(cjson.null, page.last_id)
      assert.is_false(page.has_more)
    end)

    it("validates limit and order", function()
      local res = request(m, "GET", "/v1/chat/completions?limit=0")
      assert.equal(400, res.status)
      assert.equal("limit", decode(res).error.param)
      assert.equal(400, request(m, "GET", "/v1/chat/completions?limit=101").status)
      res = request(m, "GET", "/v1/chat/completions?order=sideways")
      assert.equal(400, res.status)
      assert.equal("order", decode(res).error.param)
    end)
  end)

  describe("messages", function()
    it("lists the stored request messages", function()
      local body = cjson.encode({ model = "m", store = true, messages = {
        { role = "system", content = "sys" },
        { role = "user", content = "first", name = "bob" },
        { role = "user", content = { { type = "text", text = "part" } } },
      } })
      local id = decode(post_json(m, "/v1/chat/completions", body)).id
      local res = request(m, "GET", "/v1/chat/completions/" .. id .. "/messages?limit=2")
      assert.equal(200, res.status)
      assert.equal('{"object":"list","data":[' ..
        '{"id":"chatcmpl-mock1-0","role":"system","content":"sys","name":null,"content_parts":null},' ..
        '{"id":"chatcmpl-mock1-1","role":"user","content":"first","name":"bob","content_parts":null}],' ..
        '"first_id":"chatcmpl-mock1-0","last_id":"chatcmpl-mock1-1","has_more":true}', res.body)
      local page = decode(request(m, "GET", "/v1/chat/completions/" .. id .. "/messages?limit=2&after=chatcmpl-mock1-1"))
      assert.equal(1, #page.data)
      assert.equal("part", page.data[1].content)
      assert.same({ { type = "text", text = "part" } }, page.data[1].content_parts)
      assert.is_false(page.has_more)
      page = decode(request(m, "GET", "/v1/chat/completions/" .. id .. "/messages?order=desc"))
      assert.equal("chatcmpl-mock1-2", page.first_id)
      assert.equal("chatcmpl-mock1-0", page.last_id)
    end)

    it("has messages for the fixtures and 404s for unknown ids", function()
      local page = decode(request(m, "GET", "/v1/chat/completions/chatcmpl-abc123/messages"))
      assert.same({ { id = "chatcmpl-abc123-0", role = "user", content = "write a haiku about ai",
        name = cjson.null, content_parts = cjson.null } }, page.data)
      local res = request(m, "GET", "/v1/chat/completions/nope/messages")
      assert.equal(404, res.status)
      assert.equal(error_json("No chat completion found with id 'nope'."), res.body)
    end)
  end)

  describe("update and delete", function()
    it("replaces metadata", function()
      local res = post_json(m, "/v1/chat/completions/chatcmpl-tool123", '{"metadata":{"a":"1","b":"2"}}')
      assert.equal(200, res.status)
      assert.same({ a = "1", b = "2" }, decode(res).metadata)
      assert.same({ a = "1", b = "2" }, decode(request(m, "GET", "/v1/chat/completions/chatcmpl-tool123")).metadata)
      res = post_json(m, "/v1/chat/completions/chatcmpl-tool123", '{"metadata":null}')
      assert.equal(cjson.null, decode(res).metadata)
    end)

    it("validates the update body and the id", function()
      local res = post_json(m, "/v1/chat/completions/chatcmpl-tool123", '{}')
      assert.equal(400, res.status)
      assert.equal("metadata", decode(res).error.param)
      res = post_json(m, "/v1/chat/completions/missing", '{"metadata":{}}')
      assert.equal(404, res.status)
      assert.equal(error_json("No chat completion found with id 'missing'."), res.body)
    end)

    it("deletes, and reset restores the initial store", function()
      local res = request(m, "DELETE", "/v1/chat/completions/chatcmpl-abc123")
      assert.equal(200, res.status)
      assert.equal('{"object":"chat.completion.deleted","id":"chatcmpl-abc123","deleted":true}', res.body)
      assert.equal(404, request(m, "GET", "/v1/chat/completions/chatcmpl-abc123").status)
      assert.equal(404, request(m, "DELETE", "/v1/chat/completions/chatcmpl-abc123").status)
      post_json(m, "/v1/chat/completions/chatcmpl-tool123", '{"metadata":{}}')
      m:reset()
      assert.equal(read_file(FIXTURE_PATH), request(m, "GET", "/v1/chat/completions/chatcmpl-abc123").body)
      assert.equal(read_file("mock/fixtures/chatcmpl-tool123.json"),
        request(m, "GET", "/v1/chat/completions/chatcmpl-tool123").body)
    end)
  end)

  describe("streaming", function()
    local function prefix(id, created)
      return '{"id":"' .. id .. '","object":"chat.completion.chunk","created":' .. created ..
        ',"model":"gpt-4o-mini","system_fingerprint":"fp_mock","choices":['
    end

    it("streams the reply word by word", function()
      local res = post_json(m, "/v1/chat/completions", create_body("hi  there", { stream = true }))
      assert.equal(200, res.status)
      assert.equal("text/event-stream", res.h["content-type"])
      assert.equal("chunked", res.h["transfer-encoding"])
      assert.is_nil(res.h["content-length"])
      assert.is_true(res.complete)
      local p = prefix("chatcmpl-mock1", 1738960611)
      local function chunk(delta, finish)
        return p .. '{"index":0,"delta":' .. delta .. ',"logprobs":null,"finish_reason":' .. finish .. '}]}'
      end
      assert.same({
        chunk('{"role":"assistant","content":"","refusal":null}', "null"),
        chunk('{"content":"Echo: "}', "null"),
        chunk('{"content":"hi  "}', "null"),
        chunk('{"content":"there"}', "null"),
        chunk("{}", '"stop"'),
        "[DONE]",
      }, sse_data(res.body))
    end)

    it("adds usage when asked and stores the assembled completion", function()
      local res = post_json(m, "/v1/chat/completions", create_body("one two", {
        stream = true, store = true, stream_options = { include_usage = true } }))
      local events = sse_data(res.body)
      assert.equal(7, #events)
      for i = 1, 5 do assert.equal(cjson.null, cjson.decode(events[i]).usage) end
      assert.equal(prefix("chatcmpl-mock1", 1738960611) ..
        '],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}', events[6])
      assert.equal("[DONE]", events[7])
      local stored = decode(request(m, "GET", "/v1/chat/completions/chatcmpl-mock1"))
      assert.equal("Echo: one two", stored.choices[1].message.content)
    end)

    it("keeps the connection alive after a stream", function()
      local s = open(m)
      send(s, "POST", "/v1/chat/completions", { auth() }, create_body("x", { stream = true }))
      assert.is_true(read_response(s).complete)
      send(s, "GET", "/v1/chat/completions/chatcmpl-abc123", { auth() })
      assert.equal(200, read_response(s).status)
      s:close()
      assert.equal(1, m:stats().connections)
    end)

    it("produces N synthetic chunks for X-Mock-Stream-Chunks", function()
      local res = post_json(m, "/v1/chat/completions", create_body("ignored", { stream = true }),
        { { "X-Mock-Stream-Chunks", "10000" } })
      assert.is_true(res.complete)
      local events = sse_data(res.body)
      assert.equal(10003, #events)
      local text = {}
      for i = 2, 10001 do text[#text + 1] = cjson.decode(events[i]).choices[1].delta.content end
      assert.equal("tok1 ", text[1])
      assert.equal("tok10000 ", text[10000])
      assert.equal(10000, #text)
    end)
  end)

  describe("scripting", function()
    it("replaces responses in FIFO order and still logs them", function()
      m:script({
        { status = 500, json = { error = { message = "boom" } }, headers = { ["Retry-After-Ms"] = "10" } },
        { status = 429, body = "slow down", headers = { ["content-type"] = "text/plain" } },
        { status = 204 },
      })
      local r1 = request(m, "GET", "/v1/chat/completions/chatcmpl-abc123", { headers = {} })
      assert.equal(500, r1.status)
      assert.equal('{"error":{"message":"boom"}}', r1.body)
      assert.equal("application/json", r1.h["content-type"])
      assert.equal("10", r1.h["retry-after-ms"])
      assert.matches("^req_%x+$", r1.h["x-request-id"])
      local r2 = request(m, "GET", "/v1/chat/completions/chatcmpl-abc123")
      assert.equal(429, r2.status)
      assert.equal("slow down", r2.body)
      assert.equal("text/plain", r2.h["content-type"])
      local r3 = request(m, "GET", "/v1/chat/completions/chatcmpl-abc123")
      assert.equal(204, r3.status)
      assert.equal("0", r3.h["content-length"])
      assert.equal(200, request(m, "GET", "/v1/chat/completions/chatcmpl-abc123").status)
      assert.same({ requests = 4, connections = 4 }, m:stats())
    end)

    it("only consumes responses whose match fits", function()
      m:script({
        { match = { method = "POST" }, status = 503 },
        { match = { path = "/v1/chat/completions/chatcmpl-tool" }, status = 418 },
      })
      assert.equal(418, request(m, "GET", "/v1/chat/completions/chatcmpl-tool123").status)
      assert.equal(200, request(m, "GET", "/v1/chat/completions/chatcmpl-tool123").status)
      assert.equal(503, post_json(m, "/v1/chat/completions", create_body("x")).status)
    end)

    it("delays before the status line", function()
      m:script({ { delay_ms = 300, json = { ok = true } } })
      local t0 = socket.gettime()
      local res = request(m, "GET", "/v1/chat/completions")
      local dt = socket.gettime() - t0
      assert.equal('{"ok":true}', res.body)
      assert.is_true(dt >= 0.29 and dt < 3, "took " .. dt)
    end)

    it("passthrough applies only the delay", function()
      m:script({ { delay_ms = 200, passthrough = true } })
      local t0 = socket.gettime()
      local res = request(m, "GET", "/v1/chat/completions/chatcmpl-abc123")
      assert.is_true(socket.gettime() - t0 >= 0.18)
      assert.equal(read_file(FIXTURE_PATH), res.body)
    end)

    it("splits the body with body_delay_ms and split_at", function()
      m:script({ { body = "0123456789", split_at = 4, body_delay_ms = 600 } })
      local s = open(m)
      send(s, "GET", "/v1/x", { auth() })
      local t0 = socket.gettime()
      local res = read_head(s)
      assert.equal("10", res.h["content-length"])
      assert.equal("0123", s:receive(4))
      assert.is_true(socket.gettime() - t0 < 0.45)
      assert.equal("456789", s:receive(6))
      assert.is_true(socket.gettime() - t0 >= 0.58)
      s:close()
    end)

    it("truncates the body and closes", function()
      m:script({ { body = '{"id":"chatcmpl-abc123","object":"chat.completion"}', truncate = 10 } })
      local res = request(m, "GET", "/v1/chat/completions/chatcmpl-abc123")
      assert.equal("51", res.h["content-length"])
      assert.equal('{"id":"cha', res.body)
      assert.equal("closed", res.err)
      assert.is_false(res.complete)
    end)

    it("sends a close-delimited body", function()
      m:script({ { json = { a = 1 }, no_content_length = true } })
      local res = request(m, "GET", "/v1/chat/completions")
      assert.is_nil(res.h["content-length"])
      assert.is_nil(res.h["transfer-encoding"])
      assert.equal('{"a":1}', res.body)
    end)

    it("closes after the response with close", function()
      m:script({ { json = { a = 1 }, close = true } })
      local res, s = request(m, "GET", "/v1/chat/completions", { keep = true })
      assert.equal("close", res.h["connection"])
      assert.equal('{"a":1}', res.body)
      local data, err = s:receive(1)
      assert.is_nil(data)
      assert.equal("closed", err)
      s:close()
    end)

    it("resets the connection without a response", function()
      m:script({ { reset = true, delay_ms = 50 } })
      local s = open(m)
      send(s, "GET", "/v1/chat/completions", { auth() })
      local data, err, partial = s:receive("*a")
      s:close()
      assert.equal("", data or partial)
      assert.is_true(err == nil or err == "closed" or err == "connection reset by peer", tostring(err))
      assert.equal(1, m:stats().requests)
    end)

    it("splits SSE exactly as scripted", function()
      m:script({ { sse = { "data: {\"a\"", ":1}\n", "\ndata: [DONE]\n\n" }, headers = { ["x-extra"] = "1" } } })
      local res, s = request(m, "POST", "/v1/chat/completions", { body = "{}", keep = true })
      assert.equal(200, res.status)
      assert.equal("text/event-stream", res.h["content-type"])
      assert.equal("1", res.h["x-extra"])
      assert.same({ "data: {\"a\"", ":1}\n", "\ndata: [DONE]\n\n" }, res.chunks)
      assert.is_true(res.complete)
      -- finished cleanly: the connection is still usable
      send(s, "GET", "/v1/chat/completions/chatcmpl-abc123", { auth() })
      assert.equal(200, read_response(s).status)
      s:close()
    end)

    it("honours per-item SSE delays", function()
      m:script({ { sse = { "data: 1\n\n", { data = "data: 2\n\n", delay_ms = 600 } } } })
      local s = open(m)
      send(s, "POST", "/v1/chat/completions", { auth() }, "{}")
      local t0 = socket.gettime()
      read_head(s)
      assert.equal("9", s:receive("*l"))
      assert.equal("data: 1\n\n", s:receive(9))
      assert.is_true(socket.gettime() - t0 < 0.45)
      s:receive("*l")
      assert.equal("9", s:receive("*l"))
      assert.equal("data: 2\n\n", s:receive(9))
      assert.is_true(socket.gettime() - t0 >= 0.58)
      s:close()
    end)

    it("cuts an SSE stream with sse_end = close", function()
      m:script({ { sse = { "data: 1\n\n" }, sse_end = "close" } })
      local res = request(m, "POST", "/v1/chat/completions", { body = "{}" })
      assert.same({ "data: 1\n\n" }, res.chunks)
      assert.is_false(res.complete == true)
      assert.equal("closed", res.err)
    end)

    it("stalls an SSE stream with sse_end = stall", function()
      m:script({ { sse = { "data: 1\n\n" }, sse_end = "stall" } })
      local s = open(m)
      send(s, "POST", "/v1/chat/completions", { auth() }, "{}")
      read_head(s)
      assert.equal("9", s:receive("*l"))
      assert.equal("data: 1\n\n", s:receive(9))
      assert.equal("", s:receive("*l"))
      s:settimeout(0.3)
      local data, err = s:receive(1)
      assert.is_nil(data)
      assert.equal("timeout", err)
      s:close()
      socket.sleep(0.05)
      assert.equal(200, request(m, "GET", "/v1/chat/completions/chatcmpl-abc123").status)
    end)

    it("reset clears queued scripts", function()
      m:script({ { status = 500 } })
      m:reset()
      assert.equal(200, request(m, "GET", "/v1/chat/completions/chatcmpl-abc123").status)
    end)
  end)

  describe("introspection", function()
    it("logs raw requests with headers in original case and order", function()
      local s = open(m)
      send(s, "POST", "/v1/chat/completions?a=1&b=%20x", {
        auth(), { "X-Custom-Header", "Value One" }, { "content-type", "application/json" } }, create_body("log me"))
      read_response(s)
      s:close()
      local log = m:requests()
      assert.equal(1, #log)
      local r = log[1]
      assert.equal("POST", r.method)
      assert.equal("/v1/chat/completions?a=1&b=%20x", r.target)
      assert.equal("/v1/chat/completions", r.path)
      assert.equal("a=1&b=%20x", r.query)
      assert.equal(create_body("log me"), r.body)
      assert.equal(1, r.connection)
      assert.same({ "Host", "127.0.0.1" }, r.headers[1])
      assert.same({ "Authorization", "Bearer " .. KEY }, r.headers[2])
      assert.same({ "X-Custom-Header", "Value One" }, r.headers[3])
      assert.equal("Value One", m:header(r, "x-custom-header"))
      assert.equal("Bearer " .. KEY, m:header(r, "AUTHORIZATION"))
      assert.is_nil(m:header(r, "x-missing"))
    end)

    it("does not count control requests and reset clears the counters", function()
      request(m, "GET", "/v1/chat/completions/chatcmpl-abc123")
      request(m, "GET", "/v1/chat/completions/chatcmpl-abc123")
      m:stats()
      m:requests()
      assert.same({ requests = 2, connections = 2 }, m:stats())
      m:reset()
      assert.same({ requests = 0, connections = 0 }, m:stats())
      assert.same({}, m:requests())
    end)

    it("counts a kept-alive connection anew after reset", function()
      local s = open(m)
      send(s, "GET", "/v1/chat/completions/chatcmpl-abc123", { auth() })
      read_response(s)
      m:reset()
      send(s, "GET", "/v1/chat/completions/chatcmpl-abc123", { auth() })
      read_response(s)
      s:close()
      assert.same({ requests = 1, connections = 1 }, m:stats())
      assert.equal(1, m:requests()[1].connection)
    end)
  end)
end)
