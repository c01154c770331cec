-- Streaming chat completions: the SSE rules, mid-stream failures, final().
local openai = require("openai")
local core = require("openai.core")
local mock = require("spec.helpers.mock")
local util = require("spec.helpers.util")

local KEY = "sk-test-stream-0123456789"

local function chunk(content, extra)
  local object = {
    id = "chatcmpl-s1", object = "chat.completion.chunk", created = 1738960610, model = "m",
    choices = { { index = 0, delta = { content = content }, logprobs = openai.null, finish_reason = openai.null } },
  }
  for k, v in pairs(extra or {}) do object[k] = v end
  return openai.json.encode(object)
end

describe("streaming", function()
  local server, client
  local session = mock.session({ api_key = KEY }, { max_retries = 0 }, function(s, c) server, client = s, c end)
  setup(session.setup)
  teardown(session.teardown)
  before_each(session.before_each)

  local PARAMS = { model = "gpt-4o-mini", messages = { { role = "user", content = "one two three" } }, stream = true }

  local function open(params)
    return assert(client.chat.completions.create(params or PARAMS))
  end

  -- Reads everything; returns the contents and the error.
  local function drain(stream)
    local contents = {}
    while true do
      local c, err = stream:next()
      if c == nil then return contents, err end
      local choice = c.choices[1]
      contents[#contents + 1] = choice and choice.delta.content or "<no choice>"
    end
  end

  local function scripted(sse, sse_end, extra)
    local response = { status = 200, headers = { ["content-type"] = "text/event-stream" }, sse = sse, sse_end = sse_end }
    for k, v in pairs(extra or {}) do response[k] = v end
    server:script { response }
    return open()
  end

  it("streams the chunks of the reply as the API sends them", function()
    local stream = open { model = "gpt-4o-mini", messages = { { role = "user", content = "one two three" } },
                          stream = true, stream_options = { include_usage = true } }
    local req = server:requests()[1]
    assert.are.equal("text/event-stream", server:header(req, "accept"))
    assert.truthy(req.body:find('"stream":true', 1, true))
    assert.matches("^req_%x+$", stream._request_id)
    assert.are.equal("text/event-stream", stream.headers["content-type"])
    assert.are.equal(200, stream.status)
    local chunks = {}
    for c in stream do chunks[#chunks + 1] = c end
    assert.are.equal(7, #chunks)
    assert.are.same({ role = "assistant", content = "", refusal = openai.null }, chunks[1].choices[1].delta)
    local text = {}
    for i = 2, 5 do text[#text + 1] = chunks[i].choices[1].delta.content end
    assert.are.equal("Echo: one two three", table.concat(text))
    assert.are.equal("stop", chunks[6].choices[1].finish_reason)
    assert.are.equal(openai.null, chunks[5].choices[1].finish_reason)
    assert.are.equal(0, #chunks[7].choices)
    assert.are.same({ prompt_tokens = 3, completion_tokens = 4, total_tokens = 7 }, chunks[7].usage)
    assert.are.equal("chat.completion.chunk", chunks[1].object)
    assert.is_nil(stream:next())
  end)

  it("assembles the whole completion with final()", function()
    local stream = open { model = "gpt-4o-mini", messages = { { role = "user", content = "one two" } },
                          stream = true, stream_options = { include_usage = true } }
    local first = assert(stream:next())
    assert.are.equal("assistant", first.choices[1].delta.role)
    local cc = assert(stream:final())
    assert.are.equal("chat.completion", cc.object)
    assert.are.equal("gpt-4o-mini", cc.model)
    assert.are.equal("Echo: one two", cc.choices[1].message.content)
    assert.are.equal("assistant", cc.choices[1].message.role)
    assert.are.equal(openai.null, cc.choices[1].message.refusal)
    assert.are.equal("stop", cc.choices[1].finish_reason)
    assert.are.same({ prompt_tokens = 2, completion_tokens = 3, total_tokens = 5 }, cc.usage)
    assert.are.equal(stream._request_id, cc._request_id)
    assert.are.equal(openai.array_mt, getmetatable(cc.choices))
  end)

  it("assembles tool calls by index, refusals and several choices", function()
    local function tc(index, fields) fields.index = index return fields end
    local stream = scripted {
      "data: " .. chunk(nil, { choices = { { index = 0, delta = { role = "assistant", tool_calls = {
        tc(0, { id = "call_a", type = "function", ["function"] = { name = "get_", arguments = "" } }) } } } } }) .. "\n\n",
      "data: " .. chunk(nil, { choices = { { index = 0, delta = { tool_calls = {
        tc(0, { ["function"] = { name = "weather", arguments = "{\"ci" } }),
        tc(1, { id = "call_b", type = "function", ["function"] = { name = "noop", arguments = "{}" } }) } } } } }) .. "\n\n",
      "data: " .. chunk(nil, { choices = { { index = 0, delta = { tool_calls = {
        tc(0, { ["function"] = { arguments = "ty\":\"Oslo\"}" } }) } }, finish_reason = "tool_calls" } } }) .. "\n\n",
      "data: " .. chunk(nil, { choices = { { index = 1, delta = { role = "assistant", refusal = "I can" } } } }) .. "\n\n",
      "data: " .. chunk(nil, { choices = { { index = 1, delta = { refusal = "not." }, finish_reason = "stop" } } }) .. "\n\n",
      "data: [DONE]\n\n",
    }
    local cc = assert(stream:final())
    local message = cc.choices[1].message
    assert.are.equal(openai.null, message.content)
    assert.are.equal(2, #message.tool_calls)
    assert.are.same({ id = "call_a", type = "function", ["function"] = { name = "get_weather", arguments = '{"city":"Oslo"}' } },
      message.tool_calls[1])
    assert.are.same({ id = "call_b", type = "function", ["function"] = { name = "noop", arguments = "{}" } },
      message.tool_calls[2])
    assert.are.equal("tool_calls", cc.choices[1].finish_reason)
    assert.are.equal(1, cc.choices[2].index)
    assert.are.equal("I cannot.", cc.choices[2].message.refusal)
    assert.are.equal(openai.null, cc.usage)
  end)

  describe("SSE decoding", function()
    it("accepts LF, CR and CRLF line ends, also split across reads", function()
      local stream = scripted {
        "data: " .. chunk("a") .. "\n\n",
        "data: " .. chunk("b") .. "\r\r",
        "data: " .. chunk("c") .. "\r\n\r\n",
        "data: " .. chunk("d") .. "\r", "\n\r", "\n",
        "data: " .. chunk("e") .. "\r\n", "\r\n",
        "data: [DONE]\n\n",
      }
      assert.are.same({ "a", "b", "c", "d", "e" }, (drain(stream)))
    end)

    it("ignores comments and fields other than event and data", function()
      local stream = scripted {
        ": keep-alive\n\n",
        "id: 7\nretry: 100\nfoo: bar\ndata: " .. chunk("x") .. "\n\n",
        ":another comment\n",
        "\n",
        "data: [DONE]\n\n",
      }
      assert.are.same({ "x" }, (drain(stream)))
    end)

    it("joins multi-line data with LF", function()
      local stream = scripted {
        'data: {"id":"c","object":"chat.completion.chunk",\ndata: "choices":[{"index":0,\ndata:"delta":{"content":"multi"}}]}\n\n',
        "data: [DONE]\n\n",
      }
      assert.are.same({ "multi" }, (drain(stream)))
    end)

    it("keeps UTF-8 intact when a character is split across reads", function()
      local dash, smile = "\226\128\148", "\240\159\152\128" -- U+2014, U+1F600
      local text = chunk("dash" .. dash .. "done " .. smile)
      local cut1 = text:find(dash, 1, true) + 1
      local cut2 = text:find(smile, 1, true) + 2
      local stream = scripted { "data: " .. text:sub(1, cut1), text:sub(cut1 + 1, cut2), text:sub(cut2 + 1) .. "\n\n" }
      assert.are.same({ "dash" .. dash .. "done " .. smile }, (drain(stream)))
    end)

    it("splits a chunk at every byte boundary", function()
      local whole = "data: " .. chunk("byte by byte") .. "\r\n\r\n" .. "data: [DONE]\n\n"
      local pieces = {}
      for i = 1, #whole do pieces[i] = whole:sub(i, i) end
      assert.are.same({ "byte by byte" }, (drain(scripted(pieces))))
    end)

    it("ends at [DONE] and ignores what follows", function()
      local stream = scripted { "data: " .. chunk("a") .. "\n\ndata: [DONE]\n\ndata: " .. chunk("late") .. "\n\n" }
      assert.are.same({ "a" }, (drain(stream)))
      assert.is_nil(stream:next())
    end)

    it("does not wait for the end of the response after [DONE]", function()
      server:script { { status = 200, headers = { ["content-type"] = "text/event-stream" },
                        sse = { "data: " .. chunk("a") .. "\n\ndata: [DONE]\n\n" }, sse_end = "stall" } }
      local stream = assert(client.chat.completions.create(PARAMS, { timeout = 30 }))
      local started = core.monotonic()
      assert.are.same({ "a" }, (drain(stream)))
      assert.is_true(core.monotonic() - started < 1, "waited after [DONE]")
      assert(client.chat.completions.retrieve("chatcmpl-abc123"))
    end)

    it("reuses the connection after a stream that ended with [DONE]", function()
      local stream = open()
      assert(stream:final())
      assert(client.chat.completions.retrieve("chatcmpl-abc123"))
      assert.are.same({ requests = 2, connections = 1 }, server:stats())
    end)

    it("delivers an event the server did not end before EOF", function()
      local stream = scripted({ "data: " .. chunk("a") .. "\n\n", "data: " .. chunk("unterminated") }, "finish")
      local contents, err = drain(stream)
      assert.is_nil(err)
      assert.are.same({ "a", "unterminated" }, contents)
    end)

    it("ends cleanly when the server closes without [DONE]", function()
      local contents, err = drain(scripted({ "data: " .. chunk("a") .. "\n\n" }, "finish"))
      assert.is_nil(err)
      assert.are.same({ "a" }, contents)
    end)

    for _, ending in ipairs { "[DONE]  ", "[DONE] trailing", "[DONE]\tx", "[DONE]{}", "[DONE][DONE]" } do
      it(("ends at %q: only the [DONE] prefix counts"):format(ending), function()
        local stream = scripted { "data: " .. chunk("a") .. "\n\ndata: " .. ending .. "\n\ndata: " .. chunk("late") .. "\n\n" }
        local contents, err = drain(stream)
        assert.is_nil(err)
        assert.are.same({ "a" }, contents)
        assert.are.same({}, { stream:next() })
        assert.are.equal("a", assert(stream:final()).choices[1].message.content)
      end)
    end

    it("ends at a [DONE] line ended by CR or CRLF, and at data that starts with [DONE] on its first line", function()
      for _, sse in ipairs {
        { "data: " .. chunk("a") .. "\r\rdata: [DONE]\r\r" },
        { "data: " .. chunk("a") .. "\r\n\r\ndata: [DONE] \r\n\r\n", "data: " .. chunk("late") .. "\r\n\r\n" },
        { "data: " .. chunk("a") .. "\n\ndata: [DONE]\ndata: more\n\n", "data: " .. chunk("late") .. "\n\n" },
      } do
        local stream = scripted(sse)
        local contents, err = drain(stream)
        assert.is_nil(err)
        assert.are.same({ "a" }, contents)
      end
    end)

    it("does not end at [DONE] that is not at the start of the data", function()
      local _, err = drain(scripted { "data: " .. chunk("a") .. "\n\ndata:  [DONE]\n\n" })
      assert.are.equal("APIResponseValidationError", err.name)
      assert.matches("^200 malformed server%-sent event JSON: ", err.message)
      assert.are.equal(" [DONE]", err.body)
    end)

    it("adds a missing finish_reason as null", function()
      local stream = scripted { 'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"x"}}]}\n\n' }
      local c = assert(stream:next())
      assert.are.equal(openai.null, c.choices[1].finish_reason)
    end)
  end)

  describe("errors in the stream", function()
    it("turns event: error into an error object", function()
      local stream = scripted {
        "data: " .. chunk("a") .. "\n\n",
        'event: error\ndata: {"error":{"message":"evt error","type":"server_error","code":"boom","param":null}}\n\n',
      }
      local contents, err = drain(stream)
      assert.are.same({ "a" }, contents)
      assert.are.equal("APIError", err.name)
      assert.are.equal("evt error", err.message)
      assert.are.equal("server_error", err.type)
      assert.are.equal("boom", err.code)
      assert.is_nil(err.param)
      assert.is_nil(err.status)
      assert.are.equal(stream._request_id, err.request_id)
      assert.are.same({ nil, err }, { stream:next() })
    end)

    it("turns a payload with an error member into an error object", function()
      local _, err = drain(scripted { 'data: {"error":{"message":"mid-stream failure"}}\n\n' })
      assert.are.equal("APIError", err.name)
      assert.are.equal("mid-stream failure", err.message)
    end)

    -- As openai-python's `data.get("error")`: only a truthy member is an error.
    for _, falsy in ipairs { "null", "false", "0", "0.0", "-0.0", '""', "{}", "[]" } do
      it("delivers a chunk whose error member is " .. falsy .. " as a chunk", function()
        local text = '{"object":"chat.completion.chunk","error":' .. falsy .. ',"choices":[{"index":0,"delta":{"content":"x"}}]}'
        local stream = scripted { "data: " .. text .. "\n\n", "data: " .. chunk("y") .. "\n\n", "data: [DONE]\n\n" }
        local first, err = stream:next()
        assert.is_nil(err)
        local expected = openai.json.decode(text)
        expected.choices[1].finish_reason = openai.null
        local same, why = util.same(expected, first)
        assert.is_true(same, why)
        assert.are.same({ "y" }, (drain(stream)))
        assert.are.equal("xy", assert(stream:final()).choices[1].message.content)
      end)
    end

    local truthy = {
      { '{"message":"boom"}', "boom" },
      { '{"code":"x"}', '{"code":"x"}' },
      { '"boom"', '"boom"' },
      { "1", "1" },
      { "-0.5", "-0.5" },
      { "true", "true" },
      { "[0]", "[0]" },
      { "[{}]", "[{}]" },
    }
    for _, case in ipairs(truthy) do
      it("turns a chunk whose error member is " .. case[1] .. " into an error", function()
        local text = '{"error":' .. case[1] .. ',"choices":[]}'
        local stream = scripted { "data: " .. chunk("a") .. "\n\n", "data: " .. text .. "\n\n", "data: " .. chunk("late") .. "\n\n" }
        local contents, err = drain(stream)
        assert.are.same({ "a" }, contents)
        assert.are.equal("APIError", err.name)
        assert.are.equal(case[2], err.message)
        assert.is_nil(err.status)
        local same, why = util.same(openai.json.decode(text), err.body)
        assert.is_true(same, why)
        assert.are.same({ nil, err }, { stream:final() })
      end)
    end

    it("turns event: error into an error whatever its error member", function()
      for _, data in ipairs { '{"error":false,"message":"m"}', '{"error":{}}', '{"message":"plain"}' } do
        local _, err = drain(scripted { "event: error\ndata: " .. data .. "\n\n" })
        assert.are.equal("APIError", err.name, data)
        local same, why = util.same(openai.json.decode(data), err.body)
        assert.is_true(same, why)
      end
    end)

    it("reports malformed JSON", function()
      local _, err = drain(scripted { "data: {not json\n\n" })
      assert.are.equal("APIResponseValidationError", err.name)
      assert.matches("^200 malformed server%-sent event JSON: ", err.message)
      assert.are.equal("{not json", err.body)
    end)

    it("reports a connection cut mid-stream after the chunks before it", function()
      local contents, err = drain(scripted({ "data: " .. chunk("a") .. "\n\n", "data: " .. chunk("b") .. "\n\n", "data: {\"cut" }, "close"))
      assert.are.same({ "a", "b" }, contents)
      assert.are.equal("APIConnectionError", err.name)
      assert.are.equal(1, server:stats().requests)
    end)

    it("times out when the server stalls between chunks", function()
      server:script { { status = 200, headers = { ["content-type"] = "text/event-stream" },
                        sse = { "data: " .. chunk("a") .. "\n\n" }, sse_end = "stall" } }
      local stream = assert(client.chat.completions.create(PARAMS, { timeout = 0.3 }))
      assert.are.equal("a", stream:next().choices[1].delta.content)
      local started = core.monotonic()
      local c, err = stream:next()
      local elapsed = core.monotonic() - started
      assert.is_nil(c)
      assert.are.equal("APIConnectionTimeoutError", err.name)
      assert.is_true(elapsed >= 0.25 and elapsed < 2, "elapsed " .. elapsed)
    end)

    it("raises the error object inside a for loop", function()
      local stream = scripted { "data: " .. chunk("a") .. "\n\n", 'event: error\ndata: {"message":"loop error"}\n\n' }
      local seen = 0
      local ok, err = pcall(function()
        for _ in stream do seen = seen + 1 end
      end)
      assert.is_false(ok)
      assert.are.equal(1, seen)
      assert.are.equal(openai.Error, getmetatable(err))
      assert.are.equal("loop error", err.message)
    end)

    it("rejects an event larger than the client's cap", function()
      local small = openai.new { api_key = KEY, base_url = server.base_url, max_retries = 0, max_response_bytes = 1000 }
      server:script { { status = 200, headers = { ["content-type"] = "text/event-stream" },
                        sse = { "data: " .. chunk("a") .. "\n\n", "data: " .. chunk(("x"):rep(2000)) .. "\n\n" } } }
      local stream = assert(small.chat.completions.create(PARAMS))
      local contents, err = drain(stream)
      small:close()
      assert.are.same({ "a" }, contents)
      assert.are.equal("APIConnectionError", err.name)
      assert.are.equal("a server-sent event exceeds the limit of 1000 bytes", err.cause)
    end)
  end)

  describe("malformed chunks", function()
    -- Shapes that made next() raise "attempt to index a number value".
    local shapes = {
      '{"choices":[null]}', '{"choices":[1]}', '{"choices":[true]}', '{"choices":["x"]}',
      '{"choices":[{"index":0,"delta":5}]}',
      '{"choices":[{"index":0,"delta":{"tool_calls":[null]}}]}',
      '{"choices":[{"index":0,"delta":{"tool_calls":[7]}}]}',
      '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_x","function":"x"}]}}]}',
      '{"choices":[{"index":0.5,"delta":{"content":"?"}}]}',
      '{"choices":[{"index":-1,"delta":{"content":"?"}}]}',
      '{"choices":[{"index":1e300,"delta":{"content":"?"}}]}',
      '{"choices":[{"index":9223372036854775807,"delta":{"content":"?"}}]}',
      '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":-1,"id":"call_neg"}]}}]}',
      '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":2.5,"id":"call_frac"}]}}]}',
      '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":9223372036854775807,"id":"call_huge"}]}}]}',
    }
    for _, shape in ipairs(shapes) do
      it("delivers " .. shape .. " as sent and assembles the rest", function()
        local stream = scripted { "data: " .. chunk("a") .. "\n\n", "data: " .. shape .. "\n\n",
                                  "data: " .. chunk("b") .. "\n\n", "data: [DONE]\n\n" }
        local chunks = {}
        local ok, err = pcall(function()
          for c in stream do chunks[#chunks + 1] = c end
        end)
        assert.is_true(ok, tostring(err))
        assert.are.equal(3, #chunks)
        local expected = openai.json.decode(shape)
        for _, choice in ipairs(expected.choices) do
          if type(choice) == "table" then choice.finish_reason = openai.null end
        end
        local same, why = util.same(expected, chunks[2])
        assert.is_true(same, why)
        local cc = assert(stream:final())
        assert.are.equal(1, #cc.choices)
        assert.are.equal("ab", cc.choices[1].message.content)
        if shape:find('"call_x"', 1, true) then -- a call, without a usable function
          assert.are.same({ { id = "call_x", type = "function", ["function"] = { name = "", arguments = "" } } },
            cc.choices[1].message.tool_calls)
        else
          assert.is_nil(cc.choices[1].message.tool_calls)
        end
      end)
    end
  end)

  describe("retries", function()
    it("retries a failure before the stream starts", function()
      server:script { { status = 503, headers = { ["retry-after-ms"] = "10" } } }
      local retrying = openai.new { api_key = KEY, base_url = server.base_url, max_retries = 2 }
      local stream = assert(retrying.chat.completions.create(PARAMS))
      assert.are.equal("Echo: one two three", assert(stream:final()).choices[1].message.content)
      retrying:close()
      assert.are.equal(2, server:stats().requests)
    end)

    it("returns the error of a failed start with its status", function()
      server:script { { status = 400, json = { error = { message = "bad stream", type = "invalid_request_error" } } } }
      local stream, err = client.chat.completions.create(PARAMS)
      assert.is_nil(stream)
      assert.are.equal("BadRequestError", err.name)
      assert.are.equal("400 bad stream", err.message)
    end)

    it("never retries once events were delivered", function()
      local retrying = openai.new { api_key = KEY, base_url = server.base_url, max_retries = 2 }
      server:script { { status = 200, headers = { ["content-type"] = "text/event-stream" },
                        sse = { "data: " .. chunk("a") .. "\n\n" }, sse_end = "close" } }
      local stream = assert(retrying.chat.completions.create(PARAMS))
      local contents, err = drain(stream)
      retrying:close()
      assert.are.same({ "a" }, contents)
      assert.are.equal("APIConnectionError", err.name)
      assert.are.equal(1, server:stats().requests)
    end)
  end)

  describe("closing", function()
    -- What next() and final() give after a close() that cut the stream short.
    local function assert_aborted(stream, cause)
      local c, err = stream:next()
      assert.is_nil(c)
      assert.are.equal(openai.Error, getmetatable(err))
      assert.are.equal("APIUserAbortError", err.name)
      assert.are.equal("Request was aborted.", err.message)
      assert.are.equal(cause or "the stream was closed", err.cause)
      assert.is_nil(err.status)
      assert.is_true(err:is("APIError"))
      assert.is_false(err:is("APIConnectionError"))
      assert.are.equal("APIUserAbortError: Request was aborted. (" .. (cause or "the stream was closed") .. ")", tostring(err))
      assert.are.same({ nil, err }, { stream:next() })
      assert.are.same({ nil, err }, { stream:final() })
      return err
    end

    it("close() mid-stream aborts: next() and final() say so, and the client works on", function()
      local stream = open { model = "m", messages = { { role = "user", content = "a b c d e f" } }, stream = true }
      assert(stream:next())
      stream:close()
      stream:close()
      assert.are.equal("openai.ChatCompletionStream (finished)", tostring(stream))
      assert_aborted(stream)
      local cc = assert(client.chat.completions.retrieve("chatcmpl-abc123"))
      assert.are.equal("chatcmpl-abc123", cc.id)
    end)

    it("close() before the first next() aborts too", function()
      local stream = open()
      stream:close()
      assert_aborted(stream)
    end)

    it("close() after a clean end keeps the clean end", function()
      local stream = open()
      local chunks = 0
      for _ in stream do chunks = chunks + 1 end
      assert.are.equal(6, chunks)
      stream:close()
      assert.are.same({}, { stream:next() })
      assert.are.equal("Echo: one two three", assert(stream:final()).choices[1].message.content)
    end)

    it("close() after a failure keeps the failure", function()
      local stream = scripted { 'event: error\ndata: {"message":"first"}\n\n' }
      local _, err = stream:next()
      stream:close()
      assert.are.same({ nil, err }, { stream:next() })
      assert.are.equal("first", err.message)
    end)

    -- Lua 5.4 closes the stream when a loop over stream:iter() breaks (the
    -- loop's closing value; spec/lua54/close_spec.lua). Older runtimes
    -- have no closing value: the stream stays open, and is read on, until
    -- close() or its collection.
    it("a loop that breaks out of stream:iter() closes the stream on Lua 5.4 only", function()
      local broken = open()
      for _ in broken:iter() do break end
      if util.has_close then
        assert.are.equal("openai.ChatCompletionStream (finished)", tostring(broken))
        assert_aborted(broken)
      else
        assert.are.equal("openai.ChatCompletionStream (open)", tostring(broken))
        assert.are.equal("Echo: ", assert(broken:next()).choices[1].delta.content)
        broken:close()
        assert_aborted(broken)
      end
      assert(client.chat.completions.retrieve("chatcmpl-abc123"))
    end)

    it("a loop over stream:iter() that runs to the end leaves the clean end", function()
      local stream = open()
      local n = 0
      for _ in stream:iter() do n = n + 1 end
      assert.are.equal(6, n)
      assert.are.same({}, { stream:next() })
      assert.are.equal("Echo: one two three", assert(stream:final()).choices[1].message.content)
    end)

    it("keeps several streams of one client apart", function()
      local a = open { model = "m", messages = { { role = "user", content = "alpha beta" } }, stream = true }
      local b = open { model = "m", messages = { { role = "user", content = "gamma delta" } }, stream = true }
      local cc_b = assert(b:final())
      local cc_a = assert(a:final())
      assert.are.equal("Echo: alpha beta", cc_a.choices[1].message.content)
      assert.are.equal("Echo: gamma delta", cc_b.choices[1].message.content)
    end)

    it("a stream closes when its client is closed", function()
      local other = openai.new { api_key = KEY, base_url = server.base_url }
      local stream = assert(other.chat.completions.create(PARAMS))
      assert(stream:next())
      other:close()
      assert_aborted(stream)
    end)

    it("stores a streamed completion created with store = true", function()
      local stream = open { model = "m", store = true, messages = { { role = "user", content = "keep me" } }, stream = true }
      local cc = assert(stream:final())
      local stored = assert(client.chat.completions.retrieve(cc.id))
      assert.are.equal("Echo: keep me", stored.choices[1].message.content)
    end)
  end)
end)
