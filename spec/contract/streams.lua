-- Streams: chunks as they come, [DONE], final(), and the ways a stream fails.
local assert = require("spec.contract.assert")
local outcome = require("spec.contract.outcome")

local PARAMS = { model = "gpt-4o-mini", messages = { { role = "user", content = "one two three" } }, stream = true }

local function chunk(content)
  return ('data: {"id":"chatcmpl-s1","object":"chat.completion.chunk","created":1,"model":"m",'
    .. '"choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}\n\n'):format(content)
end

local function sse(events, sse_end, extra)
  local response = { status = 200, headers = { ["content-type"] = "text/event-stream" }, sse = events,
                     sse_end = sse_end or "finish" }
  for key, value in pairs(extra or {}) do response[key] = value end
  return { response }
end

local function drained(client)
  local stream, err = client.chat.completions.create(PARAMS)
  if stream == nil then return { open_error = outcome.error(err) } end
  local result = outcome.drain(stream)
  result.status = stream.status
  result.content_type = stream.headers["content-type"]
  result.request_id = stream._request_id
  return result
end

local cases = {}

cases[#cases + 1] = {
  name = "a stream yields its chunks in order and ends at [DONE]",
  script = sse({ chunk("one"), chunk(" two"), { data = chunk(" three"), delay_ms = 50 }, "data: [DONE]\n\n" }),
  call = drained,
  check = function(result, mock, h)
    assert.same({ contents = { "one", " two", " three" }, ended = "end", status = 200,
                  content_type = "text/event-stream", request_id = result.request_id }, result)
    local req = mock:requests()[1]
    assert.equal("text/event-stream", mock:header(req, "accept"))
    assert.same(h.decode(h.encode(PARAMS)), h.decode(req.body))
  end,
}

cases[#cases + 1] = {
  name = "events split across chunks and CRLF line ends decode the same",
  script = sse({ "data: {\"choices\":[{\"index\":0,\"del", "ta\":{\"content\":\"a\"}}]}\r", "\n\r\n",
                 "event: ignored-name\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\r\n\r\n",
                 ": a comment\n\ndata: [DONE]\n\n" }),
  call = drained,
  check = function(result)
    assert.same({ "a", "b" }, result.contents)
    assert.equal("end", result.ended)
  end,
}

cases[#cases + 1] = {
  name = "final() assembles the completion from the chunks",
  script = sse({ chunk("Hello"), chunk(", world"),
                 'data: {"id":"chatcmpl-s1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
                 "data: [DONE]\n\n" }),
  call = function(client)
    local stream = assert(client.chat.completions.create(PARAMS))
    return outcome.of(stream:final())
  end,
  check = function(result)
    local choice = result.value.choices[1]
    assert.equal("chat.completion", result.value.object)
    assert.equal("Hello, world", choice.message.content)
    assert.equal("stop", choice.finish_reason)
  end,
}

cases[#cases + 1] = {
  name = "an error event ends the stream with an APIError",
  script = sse({ chunk("partial"), 'event: error\ndata: {"error":{"message":"overloaded","type":"server_error"}}\n\n' }),
  call = drained,
  check = function(result)
    assert.same({ "partial" }, result.contents)
    assert.equal("APIError", result.ended.name)
    assert.equal("overloaded", result.ended.message)
    assert.equal("server_error", result.ended.type)
  end,
}

cases[#cases + 1] = {
  name = "malformed event JSON ends the stream with APIResponseValidationError",
  script = sse({ chunk("ok"), "data: {not json\n\n" }),
  call = drained,
  check = function(result)
    assert.same({ "ok" }, result.contents)
    assert.equal("APIResponseValidationError", result.ended.name)
  end,
}

cases[#cases + 1] = {
  name = "a connection cut mid-event ends the stream with APIConnectionError",
  script = sse({ chunk("first"), 'data: {"cut' }, "close"),
  call = drained,
  check = function(result)
    assert.same({ "first" }, result.contents)
    assert.equal("APIConnectionError", result.ended.name)
  end,
}

cases[#cases + 1] = {
  name = "a stream that ends without [DONE] ends cleanly, its last event flushed",
  script = sse({ chunk("a"), chunk("b"):sub(1, -3) }, "finish"),
  call = drained,
  check = function(result)
    assert.same({ contents = { "a", "b" }, ended = "end", status = 200, content_type = "text/event-stream",
                  request_id = result.request_id }, result)
  end,
}

cases[#cases + 1] = {
  name = "a stream that stalls longer than the timeout ends with APIConnectionTimeoutError",
  script = sse({ chunk("first") }, "stall"),
  client = { timeout = 0.5 },
  call = drained,
  check = function(result)
    assert.same({ "first" }, result.contents)
    assert.equal("APIConnectionTimeoutError", result.ended.name)
  end,
}

cases[#cases + 1] = {
  name = "an error status before the stream starts is the API error",
  script = { { status = 429, headers = { ["retry-after-ms"] = "1" },
               json = { error = { message = "slow down", type = "requests", code = "rate_limit_exceeded" } } } },
  call = drained,
  check = function(result)
    assert.same({ name = "RateLimitError", status = 429, message = "429 slow down", type = "requests",
                  code = "rate_limit_exceeded", request_id = result.open_error.request_id }, result.open_error)
  end,
}

cases[#cases + 1] = {
  name = "an event larger than max_response_bytes ends the stream",
  script = sse({ chunk(("x"):rep(300)), "data: [DONE]\n\n" }),
  client = { max_response_bytes = 200 },
  call = drained,
  check = function(result)
    assert.same({}, result.contents)
    assert.equal("APIConnectionError", result.ended.name)
    assert.equal("a server-sent event exceeds the limit of 200 bytes", result.ended.cause)
  end,
}

cases[#cases + 1] = {
  -- The mock's own stream (not a scripted one), whose [DONE] and end of
  -- response leave together, as the API's do.
  name = "the stream's connection is reused by the next call",
  call = function(client)
    local first = drained(client)
    local second = outcome.of(client.chat.completions.retrieve("chatcmpl-abc123"))
    return { first = first, second = second }
  end,
  check = function(result, mock)
    assert.equal("Echo: one two three<no content>", table.concat(result.first.contents)) -- the last chunk: finish_reason
    assert.equal("end", result.first.ended)
    assert.equal("chatcmpl-abc123", result.second.value.id)
    local log = mock:requests()
    assert.equal(log[1].connection, log[2].connection)
  end,
}

return cases
