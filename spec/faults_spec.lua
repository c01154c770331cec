-- The fault matrix: one table of scenarios, each a broken network or a
-- broken response, each with the exact outcome the client must give (the
-- whole error object, or the exact decoded value), and each followed by a
-- normal call on the SAME client, which must succeed.
local openai = require("openai")
local core = require("openai.core")
local mock = require("spec.helpers.mock")
local process = require("spec.helpers.process")
local util = require("spec.helpers.util")

local KEY = "sk-test-faults-0123456789"
local GOLDEN_ID = "chatcmpl-abc123"

---------------------------------------------------------------------------
-- Expectation helpers

-- Stands for the x-request-id the mock put on the failing response: it must
-- look like one, and be the same in err.request_id and err.headers.
local REQUEST_ID = setmetatable({}, { __tostring = function() return "<request id>" end })

-- A Lua pattern the actual string must match, for what is not
-- deterministic (a port, a millisecond count).
local LIKE_MT = { __tostring = function(self) return "like " .. self.pattern end }
local function like(pattern)
  return setmetatable({ pattern = pattern }, LIKE_MT)
end

local function check_value(expected, actual, where, request_id)
  if expected == REQUEST_ID then
    assert.is_string(actual, where)
    assert.matches("^req_%x+$", actual, nil, nil, where)
    assert.are.equal(request_id, actual, where)
  elseif getmetatable(expected) == LIKE_MT then
    assert.is_string(actual, where)
    assert.matches(expected.pattern, actual, nil, nil, where)
  else
    local same, why = util.same(expected, actual, where)
    assert.is_true(same, why)
  end
end

-- The error object has exactly the expected fields, with exactly the
-- expected values (headers too: every response header, by name).
local function check_error(expected, err)
  assert.are.equal(openai.Error, getmetatable(err), "not an openai.Error: " .. tostring(err))
  local request_id = err.headers and err.headers["x-request-id"]
  for key, value in pairs(err) do
    assert.is_not_nil(expected[key], ("unexpected field %s = %s"):format(tostring(key), tostring(value)))
  end
  for key, value in pairs(expected) do
    if key == "headers" then
      assert.is_table(err.headers, "headers")
      for name, header in pairs(value) do check_value(header, err.headers[name], "headers." .. name, request_id) end
      for name in pairs(err.headers) do assert.is_not_nil(value[name], "unexpected header " .. name) end
    else
      check_value(value, err[key], key, request_id)
    end
  end
end

local function error_body(message, etype, code)
  return ('{"error":{"message":"%s","type":"%s","param":null,"code":%s}}')
    :format(message, etype, code and ('"' .. code .. '"') or "null")
end

local function decoded(text)
  return assert(openai.json.decode(text))
end

-- What a scripted plain response sends as headers (see mock/script.lua).
local function plain_headers(body, extra)
  local headers = { ["content-length"] = tostring(#body), ["x-request-id"] = REQUEST_ID }
  if body ~= "" then headers["content-type"] = "application/json" end
  for k, v in pairs(extra or {}) do headers[k] = v end
  return headers
end

local function connection_error(cause)
  return { name = "APIConnectionError", message = "Connection error.", cause = cause }
end

local function validation_error(status, reason, body, extra_headers)
  return {
    name = "APIResponseValidationError", status = status, message = status .. " " .. reason,
    request_id = REQUEST_ID, headers = plain_headers(body, extra_headers), body = body,
  }
end

---------------------------------------------------------------------------
-- Bodies

local TRUNCATED = '{"id": "chatcmpl-abc123", "object": "chat'
local GOOD = '{"id":"chatcmpl-abc123","object":"chat.completion"}'
local HTML = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>nginx</body>\r\n</html>\r\n"
local DEEP = ("["):rep(200000) .. ("]"):rep(200000)
local BIG = '{"id":"' .. ("x"):rep(4990) .. '"}' -- 5000 bytes
local RATE = error_body("Rate limit reached for requests", "requests", "rate_limit_exceeded")
local OVERLOADED = error_body("The server is overloaded", "server_error")

-- Numbers at and beyond the int64 range; the exact Lua values they become
-- (util.same compares math.type on 5.3+, boxes by value elsewhere).
local NUMBERS = '{"id":"chatcmpl-numbers","above":99999999999999999999,"below":-9223372036854775809,'
  .. '"max":9223372036854775807,"min":-9223372036854775808,"two63":9223372036854775808,'
  .. '"two64":18446744073709551616,"huge":1e400,"tiny":1e-400,"neg_zero":-0,"exp":1E2}'
local NUMBERS_VALUE = {
  id = "chatcmpl-numbers",
  above = 1e20,                   -- float, the nearest double
  below = -9223372036854775808.0, -- float: -2^63 - 1 rounds to -2^63
  max = openai.int64("9223372036854775807"),  -- integer (a box without integers)
  min = openai.int64("-9223372036854775808"), -- integer (a box without integers)
  -- 5.3+: float 2^63, never clamped to maxinteger; elsewhere an exact unsigned box
  two63 = util.has_integers and 9223372036854775808.0 or openai.int64("9223372036854775808"),
  two64 = 18446744073709551616.0, -- float 2^64
  huge = math.huge,               -- beyond double range: strtod gives inf
  tiny = 0.0,                     -- underflow: 0.0
  neg_zero = 0,                   -- no '.', 'e': integer 0 (not -0.0)
  exp = 100.0,                    -- an exponent makes a float
}

-- \u0000 in values and keys, and a surrogate pair.
local ESCAPES = '{"id":"chatcmpl-escapes","nul":"a\\u0000b","only_nul":"\\u0000","key\\u0000":1,'
  .. '"pair":"\\ud83d\\ude00"}'
local ESCAPES_VALUE = {
  id = "chatcmpl-escapes",
  nul = "a\0b",                    -- NUL kept inside the Lua string
  only_nul = "\0",
  ["key\0"] = 1,                   -- in keys too
  pair = "\240\159\152\128",       -- U+1F600
}

---------------------------------------------------------------------------
-- Streams

local STREAM_PARAMS = { model = "gpt-4o-mini", messages = { { role = "user", content = "hi" } }, stream = true }
local CHUNK = '{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1,"model":"m",'
  .. '"choices":[{"index":0,"delta":{"content":"a"},"logprobs":null,"finish_reason":null}]}'

local function sse(events, ending, extra)
  local r = { status = 200, headers = { ["content-type"] = "text/event-stream" }, sse = events, sse_end = ending }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

---------------------------------------------------------------------------
-- The matrix. Fields:
--   name
--   script     responses queued on the mock (mock/script.lua)
--   client     options for this scenario's client (max_retries 0 unless given)
--   call       per-call options for retrieve, or for create when stream
--   stream     open a stream; `chunks` = how many chunks precede the failure
--   error      the exact error object (fields as in check_error)
--   value      the exact value returned instead (util.same, math.type included)
--   requests   how many requests the mock received
--   elapsed    {min, max} seconds for the failing call
--   run        custom scenario (refused, DNS): does everything itself

local SCENARIOS = {
  -- The network
  { name = "connection refused", run = "refused" },
  { name = "DNS failure (fresh network namespace)", run = "dns" },
  { name = "connection reset before the headers", script = { { reset = true } }, requests = 1,
    error = connection_error("Recv failure: Connection reset by peer") },
  { name = "connection closed mid-body (Content-Length not reached)", requests = 1,
    script = { { status = 200, body = GOOD, truncate = 10 } },
    error = connection_error("transfer closed with 41 bytes remaining to read") },
  { name = "connection closed mid-body (chunked, no last chunk)", requests = 1,
    script = { { status = 200, headers = { ["content-type"] = "application/json" }, sse = { '{"id":"chatcm' }, sse_end = "close" } },
    error = connection_error("transfer closed with outstanding read data remaining") },
  { name = "headers later than the timeout", requests = 1, call = { timeout = 0.3 }, elapsed = { 0.29, 1.5 },
    script = { { delay_ms = 3000, status = 200, body = GOOD } },
    error = { name = "APIConnectionTimeoutError", message = "Request timed out.",
              cause = like("^Operation timed out after %d+ milliseconds with 0 bytes received$") } },
  { name = "body stalled past the timeout", requests = 1, call = { timeout = 0.3 }, elapsed = { 0.29, 1.5 },
    script = { { status = 200, body = GOOD, split_at = 10, body_delay_ms = 3000 } },
    error = { name = "APIConnectionTimeoutError", message = "Request timed out.",
              cause = like("^Operation timed out after %d+ milliseconds with 10 out of 51 bytes received$") } },

  -- Complete responses the client cannot use
  { name = "truncated JSON in a complete response", requests = 1,
    script = { { status = 200, body = TRUNCATED } },
    error = validation_error(200, "response body is not valid JSON: invalid JSON: premature EOF at byte 41", TRUNCATED) },
  { name = "truncated JSON in a close-delimited response", requests = 1,
    script = { { status = 200, body = TRUNCATED, no_content_length = true } },
    error = {
      name = "APIResponseValidationError", status = 200, request_id = REQUEST_ID, body = TRUNCATED,
      message = "200 response body is not valid JSON: invalid JSON: premature EOF at byte 41",
      headers = { ["content-type"] = "application/json", connection = "close", ["x-request-id"] = REQUEST_ID },
    } },
  { name = "non-JSON 200", requests = 1,
    script = { { status = 200, headers = { ["content-type"] = "text/plain" }, body = "OK" } },
    error = validation_error(200, "response body is not valid JSON: invalid JSON: unexpected character 'O' at byte 0",
      "OK", { ["content-type"] = "text/plain" }) },
  { name = "a JSON scalar on a 200", requests = 1, script = { { status = 200, body = "42" } },
    error = { name = "APIResponseValidationError", status = 200, message = "200 response body is not a JSON object",
              request_id = REQUEST_ID, headers = plain_headers("42"), body = 42 } }, -- the decoded scalar
  { name = "HTML 502 (max_retries 0)", requests = 1,
    script = { { status = 502, headers = { ["content-type"] = "text/html" }, body = HTML } },
    error = { name = "InternalServerError", status = 502, message = "502 " .. HTML, request_id = REQUEST_ID,
              headers = plain_headers(HTML, { ["content-type"] = "text/html" }), body = HTML } },
  { name = "empty 200", requests = 1, script = { { status = 200 } },
    error = validation_error(200, "response body is empty", "") },
  { name = "204 No Content", requests = 1, script = { { status = 204 } },
    error = validation_error(204, "response body is empty", "") },
  { name = "JSON nested 200 000 deep on a 200", requests = 1, script = { { status = 200, body = DEEP } },
    error = validation_error(200, "response body is not valid JSON: JSON nested too deeply (limit 1000)", DEEP) },
  { name = "JSON nested 200 000 deep on a 400", requests = 1, script = { { status = 400, body = DEEP } },
    error = { name = "BadRequestError", status = 400, message = "400 " .. DEEP, request_id = REQUEST_ID,
              headers = plain_headers(DEEP), body = DEEP } },
  { name = "invalid UTF-8 in a 200 body", requests = 1,
    script = { { status = 200, body = '{"id":"a\255\254b"}' } },
    error = validation_error(200, "response body is not valid JSON: invalid JSON: invalid UTF-8 in string at byte 8",
      '{"id":"a\255\254b"}') },
  { name = "a raw control byte inside a JSON string", requests = 1,
    script = { { status = 200, body = '{"id":"a\0b"}' } },
    error = validation_error(200, "response body is not valid JSON: invalid JSON: control character in string at byte 8",
      '{"id":"a\0b"}') },

  -- Values decoded on purpose
  { name = "numbers beyond int64 in a 200", requests = 1,
    script = { { status = 200, body = NUMBERS } }, value = NUMBERS_VALUE },
  { name = "NUL and surrogate pairs in strings", requests = 1,
    script = { { status = 200, body = ESCAPES } }, value = ESCAPES_VALUE },
  { name = "a lone surrogate escape in a 200 body", requests = 1,
    script = { { status = 200, body = '{"id":"a\\ud800b"}' } },
    error = validation_error(200, "response body is not valid JSON: invalid JSON: lone surrogate escape at byte 8",
      '{"id":"a\\ud800b"}') },

  -- Limits: never retried, whatever max_retries says
  { name = "body larger than max_response_bytes", requests = 1,
    client = { max_response_bytes = 1000, max_retries = 2 },
    script = { { status = 200, body = BIG }, { status = 200, body = BIG } },
    error = connection_error("response exceeds the limit of 1000 bytes") },
  { name = "error body larger than max_response_bytes", requests = 1,
    client = { max_response_bytes = 1000, max_retries = 2 },
    script = { { status = 500, body = BIG }, { status = 500, body = BIG } },
    error = connection_error("response exceeds the limit of 1000 bytes") },
  { name = "response headers beyond 256 KiB", requests = 1, client = { max_retries = 2 },
    script = { { status = 200, body = GOOD,
                 headers = { ["x-a"] = ("a"):rep(90000), ["x-b"] = ("b"):rep(90000), ["x-c"] = ("c"):rep(90000) } } },
    error = connection_error("response headers exceed the limit") },
  -- libcurl 7.88 refuses a header line over 100 KiB (CURL_MAX_HTTP_HEADER)
  -- before our callback sees it, and says only "Out of memory": reported as
  -- a limit, not retried.
  { name = "one header line beyond libcurl's 100 KiB", requests = 1, client = { max_retries = 2 },
    script = { { status = 200, body = GOOD, headers = { ["x-a"] = ("a"):rep(102400) } } },
    error = connection_error("a response header line exceeds libcurl's limit") },

  -- Streams
  { name = "stream: reset before the headers", stream = true, requests = 1, script = { { reset = true } },
    error = connection_error("Recv failure: Connection reset by peer") },
  { name = "stream: an event larger than max_response_bytes", stream = true, chunks = 1, requests = 1,
    client = { max_response_bytes = 1000, max_retries = 2 },
    script = { sse { "data: " .. CHUNK .. "\n\n", "data: " .. ("z"):rep(1500) .. "\n\n" } },
    error = connection_error("a server-sent event exceeds the limit of 1000 bytes") },
  { name = "stream: connection cut mid-event", stream = true, chunks = 1, requests = 1, client = { max_retries = 2 },
    script = { sse({ "data: " .. CHUNK .. "\n\n", 'data: {"choices":[{"ind' }, "close") },
    error = connection_error("transfer closed with outstanding read data remaining") },
  { name = "stream: clean end in the middle of an event", stream = true, chunks = 1, requests = 1,
    script = { sse({ "data: " .. CHUNK .. "\n\n", 'data: {"choices":[{"ind' }, "finish") },
    error = {
      name = "APIResponseValidationError", status = 200, request_id = REQUEST_ID, body = '{"choices":[{"ind',
      message = "200 malformed server-sent event JSON: invalid JSON: premature EOF at byte 17",
      headers = { ["content-type"] = "text/event-stream", ["transfer-encoding"] = "chunked", ["x-request-id"] = REQUEST_ID },
    } },
  { name = "stream: stalled mid-event past the timeout", stream = true, chunks = 1, requests = 1,
    call = { timeout = 0.3 }, elapsed = { 0.29, 1.5 },
    script = { sse({ "data: " .. CHUNK .. "\n\n", "data: {" }, "stall") },
    error = { name = "APIConnectionTimeoutError", message = "Request timed out.", cause = "no data within 0.300 s" } },
}

-- 429 and 503 with each retry header form: the answer is the last error,
-- once max_retries is used up.
do
  local date_ahead = function() return os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 1) end
  local FORMS = {
    -- retry-after-ms 20 twice: well under the 1.125 s the backoff would take
    { label = "retry-after-ms", retries = 2, headers = function() return { ["retry-after-ms"] = "20" } end,
      elapsed = { 0.04, 0.9 } },
    { label = "retry-after seconds", retries = 2, headers = function() return { ["retry-after"] = "0.02" } end,
      elapsed = { 0.04, 0.9 } },
    { label = "retry-after HTTP date", retries = 1, headers = function() return { ["retry-after"] = date_ahead() } end,
      elapsed = { 0, 1.6 } },
    { label = "x-should-retry false", retries = 2, headers = function() return { ["x-should-retry"] = "false" } end,
      elapsed = { 0, 0.3 } },
  }
  local STATUSES = {
    { status = 429, name = "RateLimitError", body = RATE, message = "429 Rate limit reached for requests",
      type = "requests", code = "rate_limit_exceeded" },
    { status = 503, name = "InternalServerError", body = OVERLOADED, message = "503 The server is overloaded",
      type = "server_error" },
  }
  for _, s in ipairs(STATUSES) do
    for _, form in ipairs(FORMS) do
      local attempts = form.headers()["x-should-retry"] and 1 or form.retries + 1
      SCENARIOS[#SCENARIOS + 1] = {
        name = ("%d with %s"):format(s.status, form.label),
        client = { max_retries = form.retries },
        requests = attempts,
        retry_counts = attempts,
        elapsed = form.elapsed,
        -- built when the scenario runs, so an HTTP date is fresh
        script = function()
          local list = {}
          for i = 1, form.retries + 1 do list[i] = { status = s.status, body = s.body, headers = form.headers() } end
          return list
        end,
        error = function()
          local body = decoded(s.body)
          local extra = form.headers()
          if extra["retry-after"] and form.label:find("date") then extra["retry-after"] = like("GMT$") end
          return {
            name = s.name, status = s.status, message = s.message, type = s.type, code = s.code,
            error = body.error, request_id = REQUEST_ID, headers = plain_headers(s.body, extra), body = body,
          }
        end,
      }
    end
  end
end

---------------------------------------------------------------------------

describe("fault matrix", function()
  local server

  setup(function() server = mock.start { api_key = KEY } end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function new_client(base_url, opts)
    local o = { api_key = KEY, base_url = base_url, max_retries = 0 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return openai.new(o)
  end

  -- The same client, after the fault: a normal call works, on a mock that
  -- was reset (one request, the golden completion).
  local function assert_recovers(client, on)
    on = on or server
    on:reset()
    local cc, err = client.chat.completions.retrieve(GOLDEN_ID)
    assert.is_nil(err)
    assert.are.equal(GOLDEN_ID, cc.id)
    assert.are.equal(openai.int64("4944116822809979520"), cc.seed)
    assert.are.equal(1, on:stats().requests)
  end

  local function run_scripted(scenario)
    local client = new_client(server.base_url, scenario.client)
    local script = type(scenario.script) == "function" and scenario.script() or scenario.script
    server:script(script)
    local started = core.monotonic()
    local result, err
    if scenario.stream then
      local stream
      stream, err = client.chat.completions.create(STREAM_PARAMS, scenario.call)
      if stream then
        for i = 1, scenario.chunks or 0 do
          local chunk, chunk_err = stream:next()
          assert.is_nil(chunk_err)
          assert.are.equal("a", chunk.choices[1].delta.content, "chunk " .. i)
          started = core.monotonic() -- time only the failing read
        end
        result, err = stream:next()
        assert.are.same({ nil, err }, { stream:next() }) -- the error sticks
        stream:close()
      end
    else
      result, err = client.chat.completions.retrieve(GOLDEN_ID, scenario.call)
    end
    local elapsed = core.monotonic() - started

    if scenario.value then
      assert.is_nil(err)
      local same, why = util.same(scenario.value, result)
      assert.is_true(same, why)
      assert.matches("^req_%x+$", result._request_id)
    else
      assert.is_nil(result)
      local expected = type(scenario.error) == "function" and scenario.error() or scenario.error
      check_error(expected, err)
    end
    assert.are.equal(scenario.requests, server:stats().requests)
    if scenario.retry_counts then
      local counts = {}
      for i, req in ipairs(server:requests()) do counts[i] = server:header(req, "x-stainless-retry-count") end
      local want = {}
      for i = 1, scenario.retry_counts do want[i] = tostring(i - 1) end
      assert.are.same(want, counts)
    end
    if scenario.elapsed then
      assert.is_true(elapsed >= scenario.elapsed[1] and elapsed < scenario.elapsed[2], "elapsed " .. elapsed)
    end
    assert_recovers(client)
    client:close()
  end

  -- Nothing listens on the port; then a mock starts there and the same
  -- client gets through.
  local function run_refused()
    local port = mock.free_port()
    local client = new_client("http://127.0.0.1:" .. port .. "/v1")
    local cc, err = client.chat.completions.retrieve(GOLDEN_ID)
    assert.is_nil(cc)
    check_error(connection_error(like(("^Failed to connect to 127%%.0%%.0%%.1 port %d after %%d+ ms: Couldn't connect to server$")
      :format(port))), err)
    local late = mock.start { api_key = KEY, port = port }
    local ok, problem = pcall(assert_recovers, client, late)
    late:stop()
    client:close()
    assert(ok, problem)
  end

  -- In a fresh network and mount namespace (nothing can leave it): the
  -- name does not resolve; then /etc/hosts (bind-mounted, inside the
  -- namespace only) maps it to 127.0.0.1, where a mock started inside the
  -- namespace answers, and the same client gets through.
  local DNS_CHILD = [[
    local openai = require("openai")
    local mock = require("spec.helpers.mock")
    local hosts, key = os.getenv("FAULT_HOSTS"), os.getenv("FAULT_KEY")
    local m = mock.start { api_key = key }
    local port = m.base_url:match(":(%d+)/v1$")
    local client = openai.new { api_key = key, base_url = "http://openai-fault.invalid:" .. port .. "/v1", max_retries = 0 }
    local cc, err = client.chat.completions.retrieve("chatcmpl-abc123")
    local fields = {}
    for k in pairs(err or {}) do fields[#fields + 1] = k end
    table.sort(fields)
    local before = m:stats().requests
    local status = os.execute("mount --bind '" .. hosts .. "' /etc/hosts")
    local mounted = status == true or status == 0 -- 5.1 and LuaJIT give the exit status
    local cc2, err2 = client.chat.completions.retrieve("chatcmpl-abc123")
    local after = m:stats().requests
    client:close()
    m:stop()
    io.write(("return { first = %s, name = %q, message = %q, cause = %q, fields = %q, before = %d, "
      .. "mounted = %s, id = %q, second_error = %q, after = %d }"):format(
      tostring(cc ~= nil), err and err.name, err and err.message, err and tostring(err.cause),
      table.concat(fields, ","), before, tostring(mounted), cc2 and cc2.id or "", tostring(err2), after))
  ]]

  local function run_dns()
    local hosts = os.tmpname()
    local f = assert(io.open(hosts, "w"))
    f:write("127.0.0.1 localhost\n127.0.0.1 openai-fault.invalid\n")
    f:close()
    local inner = "ip link set lo up && exec env -u OPENAI_CUSTOM_HEADERS -u OPENAI_ORG_ID -u OPENAI_PROJECT_ID "
      .. "LUA_PATH='lua/?.lua;lua/?/init.lua;./?.lua;;' " .. util.lua_prefix()
      .. ' -e "$1" </dev/null'
    local cmd = "FAULT_HOSTS=" .. util.shell_quote(hosts) .. " FAULT_KEY=" .. util.shell_quote(KEY)
      .. " unshare -n -m sh -c " .. util.shell_quote(inner) .. " sh " .. util.shell_quote(DNS_CHILD)
    local out, ok = process.run(cmd)
    os.remove(hosts)
    assert.is_true(ok, out)
    local load_ok, result = pcall(assert(util.load(out, "child", {})))
    assert.is_true(load_ok, out)
    assert.are.same({
      first = false, name = "APIConnectionError", message = "Connection error.",
      cause = "Could not resolve host: openai-fault.invalid", fields = "cause,message,name",
      before = 0, mounted = true, id = GOLDEN_ID, second_error = "nil", after = 1,
    }, result)
  end

  -- The DNS scenario needs unshare (root, or user namespaces).
  local unshare_problem
  do
    local probe_out, probe_ok = process.run("unshare -n -m true")
    if not probe_ok then unshare_problem = "unshare -n -m is not permitted here: " .. probe_out end
  end

  for i, scenario in ipairs(SCENARIOS) do
    local title = ("%02d %s"):format(i, scenario.name)
    if scenario.run == "dns" and unshare_problem then
      pending(title .. ": " .. unshare_problem)
    else
      it(title, function()
        if scenario.run == "refused" then
          run_refused()
        elseif scenario.run == "dns" then
          run_dns()
        else
          run_scripted(scenario)
        end
      end)
    end
  end
end)
