-- What a server can send wrong at the HTTP level, played byte for byte by
-- the hostile server's raw mode: each transport must come to the same
-- result (an answer, or an APIConnectionError), never a crash or a hang.
local assert = require("spec.contract.assert")
local base64 = require("spec.helpers.base64")
local outcome = require("spec.contract.outcome")

-- A client whose every request gets `bytes` back, verbatim, then a close.
local function raw(bytes)
  return function(env)
    return { base_url = env.hostile_url .. "/raw", default_query = { b64 = base64.url(bytes) } }
  end
end

local function retrieve(client)
  return outcome.of(client.chat.completions.retrieve("chatcmpl-raw"))
end

local function json_response(head_lines, body)
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" .. head_lines
    .. "Content-Length: " .. #body .. "\r\n\r\n" .. body
end

local function answered(value)
  return function(result)
    assert.same(value, result.value)
  end
end

local function connection_error(result)
  assert.equal("APIConnectionError", result.error.name)
  assert.equal("Connection error.", result.error.message)
end

local cases = {}

local function case(name, bytes, check, call)
  cases[#cases + 1] = { name = name, client = raw(bytes), call = call or retrieve, check = check }
end

case("interim 100 and 103 responses before the final one",
  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    .. json_response("X-Request-Id: req_raw\r\n", '{"id":"a"}'),
  function(result)
    assert.same({ id = "a" }, result.value)
    assert.equal("req_raw", result.request_id)
  end)
case("chunk extensions and trailers",
  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    .. '3;ext=1\r\n{"i\r\n7\r\nd":"a"}\r\n0\r\nX-Trailer: 1\r\n\r\n',
  answered { id = "a" })
case("a close-delimited HTTP/1.0 response",
  'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"id":"a"}',
  answered { id = "a" })
case("a malformed status line", "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\n{}", connection_error)
case("a response that is not HTTP", "SSH-2.0-OpenSSH_9.2\r\n\r\n", connection_error)
case("a chunk size that is not hexadecimal",
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", connection_error)
case("a chunked body cut before its last chunk",
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n{"id":"a"}\r\n', connection_error)
case("a body shorter than its Content-Length",
  'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"id":"a"}', connection_error)
case("a Content-Length that is not a number",
  'HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n{"id":"a"}', connection_error)
case("two different Content-Length values",
  'HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Length: 12\r\n\r\n{"id":"a"}', connection_error)
case("a header line without a colon",
  'HTTP/1.1 200 OK\r\nContent-Length: 10\r\nnot a header\r\n\r\n{"id":"a"}', connection_error)
case("a head that never ends", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", connection_error)

case("a stream in chunks with extensions",
  "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    .. '2f;x=y\r\ndata: {"choices":[{"delta":{"content":"a"}}]}\n\n\r\n'
    .. 'e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n',
  function(result) assert.same({ contents = { "a" }, ended = "end" }, result) end,
  function(client)
    return outcome.drain(assert(client.chat.completions.create { model = "m", messages = {}, stream = true }))
  end)

return cases
