-- The mock's Responses and Conversations APIs, spoken to over plain HTTP
-- (luasocket + lua-cjson, no client module): every endpoint, the typed
-- event streams, background runs and their replay, and the X-Mock-* headers
-- that steer them. Runs under every runtime; the mock itself is Lua 5.4.
local socket = require("socket")
local http = require("socket.http")
local ltn12 = require("ltn12")
local cjson = require("cjson")
local mock = require("spec.helpers.mock")

local KEY = "sk-test-responses-0001"
local null = cjson.null
local unpack = table.unpack or unpack

describe("mock: responses and conversations", function()
  local m

  setup(function() m = mock.start({ api_key = KEY }) end)
  teardown(function() m:stop() end)
  before_each(function() m:reset() end)

  -- One API request; returns the status and the raw body. `body` is a Lua
  -- table (sent as JSON) or a string (sent as it is).
  local function raw(method, path, body, headers)
    if type(body) == "table" then body = cjson.encode(body) end
    local h = { authorization = "Bearer " .. KEY }
    for k, v in pairs(headers or {}) do h[k] = v end
    if body then
      h["content-type"] = "application/json"
      h["content-length"] = tostring(#body)
    end
    local chunks = {}
    local _, status = http.request({
      url = m.base_url .. path,
      method = method,
      headers = h,
      source = body and ltn12.source.string(body) or nil,
      sink = ltn12.sink.table(chunks),
      create = function()
        local s = socket.tcp()
        s:settimeout(10)
        return s
      end,
    })
    return status, table.concat(chunks)
  end

  -- The same, with the body decoded.
  local function call(method, path, body, headers)
    local status, text = raw(method, path, body, headers)
    return status, cjson.decode(text)
  end

  -- The events of an SSE body: a list of { event = name, data = decoded }.
  local function events_of(text)
    local list = {}
    for block in text:gmatch("(.-)\n\n") do
      local name = block:match("^event: ([^\n]*)\n")
      local data = block:match("\ndata: (.*)$")
      list[#list + 1] = { event = name, data = cjson.decode(data) }
    end
    return list
  end

  local function stream(method, path, body, headers)
    local status, text = raw(method, path, body, headers)
    assert.are.equal(200, status, text)
    assert.is_nil(text:find("[DONE]", 1, true))
    return events_of(text)
  end

  local function types(events)
    local out = {}
    for i, e in ipairs(events) do
      assert.are.equal(e.event, e.data.type)
      out[i] = e.event
    end
    return out
  end

  local function sequence_numbers(events)
    local out = {}
    for i, e in ipairs(events) do out[i] = e.data.sequence_number end
    return out
  end

  local function range(from, to)
    local out = {}
    for i = from, to do out[#out + 1] = i end
    return out
  end

  local function assert_error(status, want_status, body, param, code)
    assert.are.equal(want_status, status)
    assert.are.equal("string", type(body.error.message))
    assert.are.equal(want_status == 500 and "server_error" or "invalid_request_error", body.error.type)
    assert.are.equal(param or null, body.error.param)
    assert.are.equal(code or null, body.error.code)
  end

  -- Polls a response until `done(response)`, 400 times 10 ms at the most;
  -- returns the statuses seen (each once, in order) and the last response.
  local function poll(id, done)
    local seen, last = {}, nil
    for _ = 1, 400 do
      local status, r = call("GET", "/responses/" .. id)
      assert.are.equal(200, status)
      if seen[#seen] ~= r.status then seen[#seen + 1] = r.status end
      last = r
      if done(r) then return seen, last end
      socket.sleep(0.01)
    end
    error("response " .. id .. " never got there: " .. table.concat(seen, ", "))
  end

  local function user(text, id)
    return { type = "message", role = "user", content = text, id = id }
  end

  local function input_message(id, text)
    return { id = id, type = "message", status = "completed", role = "user",
      content = { { type = "input_text", text = text } } }
  end

  local function output_message(id, text)
    return { id = id, type = "message", status = "completed", role = "assistant",
      content = { { type = "output_text", text = text, annotations = {}, logprobs = {} } } }
  end

  local NORMAL = {
    "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
    "response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
    "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
  }

  describe("create", function()
    it("answers with a completed Response echoing the input", function()
      local status, r = call("POST", "/responses", {
        model = "gpt-4.1", input = "hello mock world", instructions = "be brief",
        metadata = { k = "v" }, temperature = 0.5, previous_response_id = "resp_earlier",
      })
      assert.are.equal(200, status)
      assert.are.same({
        id = "resp_mock1", object = "response", created_at = r.created_at, status = "completed",
        background = false, completed_at = r.created_at + 1, conversation = null, error = null,
        incomplete_details = null, instructions = "be brief", max_output_tokens = null, max_tool_calls = null,
        model = "gpt-4.1", output = { output_message("msg_mock1", "Echo: hello mock world") },
        parallel_tool_calls = true, previous_response_id = "resp_earlier",
        reasoning = { effort = null, summary = null }, service_tier = "default", store = true,
        temperature = 0.5, text = { format = { type = "text" }, verbosity = "medium" }, tool_choice = "auto",
        tools = {}, top_logprobs = 0, top_p = 1, truncation = "disabled", metadata = { k = "v" },
        usage = { input_tokens = 5, input_tokens_details = { cached_tokens = 0, cache_write_tokens = 0 },
          output_tokens = 4, output_tokens_details = { reasoning_tokens = 0 }, total_tokens = 9 },
      }, r)
    end)

    it("answers the last message item of a list, text parts joined", function()
      local _, r = call("POST", "/responses", { model = "m", input = {
        user("first"),
        { role = "assistant", content = "ignored" },
        { role = "user", content = { { type = "input_text", text = "two " }, { type = "input_text", text = "parts" } } },
      } })
      assert.are.equal("Echo: two parts", r.output[1].content[1].text)
      assert.are.equal(4, r.usage.input_tokens)
    end)

    it("rejects bad bodies in the API's error shape", function()
      local status, body = call("POST", "/responses", { input = "x" })
      assert_error(status, 400, body, "model", "missing_required_parameter")
      status, body = call("POST", "/responses", { model = 7, input = "x" })
      assert_error(status, 400, body, "model", "invalid_type")
      status, body = call("POST", "/responses", { model = "m" })
      assert_error(status, 400, body, "input", "missing_required_parameter")
      status, body = call("POST", "/responses", { model = "m", input = 3 })
      assert_error(status, 400, body, "input", "invalid_type")
      status, body = call("POST", "/responses", { model = "m", input = { "text" } })
      assert_error(status, 400, body, "input[0]", "invalid_type")
      status, body = call("POST", "/responses", { model = "m", input = { { content = "no role" } } })
      assert_error(status, 400, body, "input[0].role", "missing_required_parameter")
      status, body = call("POST", "/responses", { model = "m", input = "x", stream = "yes" })
      assert_error(status, 400, body, "stream", "invalid_type")
      status, body = call("POST", "/responses", "{not json")
      assert_error(status, 400, body)
      status, body = call("POST", "/responses", { model = "m", input = "x", background = true, store = false })
      assert_error(status, 400, body, "background")
      status, body = call("POST", "/responses", { model = "m", input = "x" }, { ["X-Mock-Response-Outcome"] = "odd" })
      assert_error(status, 400, body)
    end)

    it("asks for the API key like the other endpoints", function()
      local status, body = call("POST", "/responses", { model = "m", input = "x" }, { authorization = "Bearer sk-wrong-key" })
      assert_error(status, 401, body, nil, "invalid_api_key")
    end)
  end)

  describe("retrieve and delete", function()
    it("keeps stored responses until deleted", function()
      call("POST", "/responses", { model = "m", input = "keep me" })
      local status, r = call("GET", "/responses/resp_mock1")
      assert.are.equal(200, status)
      assert.are.equal("Echo: keep me", r.output[1].content[1].text)
      status, r = call("DELETE", "/responses/resp_mock1")
      assert.are.equal(200, status)
      assert.are.same({ id = "resp_mock1", object = "response", deleted = true }, r)
      status, r = call("GET", "/responses/resp_mock1")
      assert_error(status, 404, r)
      assert.are.equal("Response with id 'resp_mock1' not found.", r.error.message)
      status, r = call("DELETE", "/responses/resp_mock1")
      assert_error(status, 404, r)
    end)

    it("does not keep responses created with store = false", function()
      local _, r = call("POST", "/responses", { model = "m", input = "x", store = false })
      assert.is_false(r.store)
      local status, body = call("GET", "/responses/" .. r.id)
      assert_error(status, 404, body)
    end)
  end)

  describe("streaming", function()
    it("sends typed events with sequence numbers from 0 and no [DONE]", function()
      local events = stream("POST", "/responses", { model = "m", input = "a b", stream = true },
        { ["X-Mock-Stream-Chunks"] = "3" })
      assert.are.same(NORMAL, types(events))
      assert.are.same(range(0, #events - 1), sequence_numbers(events))
      local d = {}
      for i = 5, 7 do d[#d + 1] = events[i].data.delta end
      assert.are.same({ "tok1 ", "tok2 ", "tok3 " }, d)
      assert.are.same({ type = "response.output_text.delta", sequence_number = 4, item_id = "msg_mock1",
        output_index = 0, content_index = 0, delta = "tok1 ", logprobs = {} }, events[5].data)
      local created = events[1].data.response
      assert.are.equal("in_progress", created.status)
      assert.are.same({}, created.output)
      assert.are.same({ id = "msg_mock1", type = "message", status = "in_progress", content = {}, role = "assistant" },
        events[3].data.item)
      assert.are.same({ type = "output_text", text = "", annotations = {}, logprobs = {} }, events[4].data.part)
      assert.are.equal("tok1 tok2 tok3 ", events[8].data.text)
      assert.are.same(output_message("msg_mock1", "tok1 tok2 tok3 "), events[10].data.item)
      local done = events[11].data.response
      assert.are.equal("completed", done.status)
      assert.are.equal(3, done.usage.output_tokens)
      local _, stored = call("GET", "/responses/resp_mock1")
      assert.are.same(done, stored)
    end)

    local function outcome(name, headers)
      headers = headers or {}
      headers["X-Mock-Response-Outcome"] = name
      headers["X-Mock-Stream-Chunks"] = "5"
      return stream("POST", "/responses", { model = "m", input = "x", stream = true }, headers)
    end

    local BROKEN = { "response.created", "response.in_progress", "response.output_item.added",
      "response.content_part.added", "response.output_text.delta", "response.output_text.delta" }

    it("ends with response.failed on X-Mock-Response-Outcome: failed", function()
      local events = outcome("failed")
      local want = { unpack(BROKEN) }
      want[#want + 1] = "response.failed"
      assert.are.same(want, types(events))
      local r = events[#events].data.response
      assert.are.equal("failed", r.status)
      assert.are.same({ code = "server_error", message = "mock failure" }, r.error)
      assert.are.equal("incomplete", r.output[1].status)
      assert.are.equal("tok1 tok2 ", r.output[1].content[1].text)
      assert.are.equal(2, r.usage.output_tokens)
    end)

    it("ends with response.incomplete on X-Mock-Response-Outcome: incomplete", function()
      local events = outcome("incomplete")
      assert.are.equal("response.incomplete", types(events)[#BROKEN + 1])
      local r = events[#events].data.response
      assert.are.equal("incomplete", r.status)
      assert.are.same({ reason = "max_output_tokens" }, r.incomplete_details)
    end)

    it("ends with an error event on X-Mock-Response-Outcome: error", function()
      local events = outcome("error")
      local want = { unpack(BROKEN) }
      want[#want + 1] = "error"
      assert.are.same(want, types(events))
      assert.are.same({ type = "error", sequence_number = 6, code = "server_error", message = "mock error event",
        param = null }, events[#events].data)
      local _, r = call("GET", "/responses/resp_mock1")
      assert.are.equal("failed", r.status)
    end)

    it("applies the outcome to plain creates too", function()
      local status, r = call("POST", "/responses", { model = "m", input = "x" },
        { ["X-Mock-Response-Outcome"] = "incomplete" })
      assert.are.equal(200, status)
      assert.are.equal("incomplete", r.status)
      status, r = call("POST", "/responses", { model = "m", input = "x" }, { ["X-Mock-Response-Outcome"] = "error" })
      assert_error(status, 500, r, nil, "server_error")
    end)

    it("refuses to stream a response again unless it ran in the background", function()
      call("POST", "/responses", { model = "m", input = "x" })
      local status, body = call("GET", "/responses/resp_mock1?stream=true")
      assert_error(status, 400, body, "stream")
    end)
  end)

  describe("background", function()
    it("goes from queued through in_progress to completed", function()
      local status, r = call("POST", "/responses", { model = "m", input = "later", background = true },
        { ["X-Mock-Background-Ms"] = "100" })
      assert.are.equal(200, status)
      assert.are.equal("queued", r.status)
      assert.is_true(r.background)
      local seen, last = poll(r.id, function(x) return x.status == "completed" end)
      local order = { queued = 1, in_progress = 2, completed = 3 }
      for i = 2, #seen do assert.is_true(order[seen[i - 1]] < order[seen[i]]) end
      assert.are.same(output_message("msg_mock1", "Echo: later"), last.output[1])
    end)

    it("cancels a queued response, and only background ones", function()
      call("POST", "/responses", { model = "m", input = "x", background = true }, { ["X-Mock-Background-Ms"] = "60000" })
      local status, r = call("POST", "/responses/resp_mock1/cancel")
      assert.are.equal(200, status)
      assert.are.equal("cancelled", r.status)
      local _, again = call("POST", "/responses/resp_mock1/cancel")
      assert.are.same(r, again)
      local _, got = call("GET", "/responses/resp_mock1")
      assert.are.same(r, got)
      call("POST", "/responses", { model = "m", input = "x" })
      status, r = call("POST", "/responses/resp_mock2/cancel")
      assert_error(status, 400, r)
      status, r = call("POST", "/responses/resp_nope/cancel")
      assert_error(status, 404, r)
    end)

    it("streams, and streams again from any sequence number", function()
      local body = { model = "m", input = "x", background = true, stream = true }
      local events = stream("POST", "/responses", body, { ["X-Mock-Background-Ms"] = "50", ["X-Mock-Stream-Chunks"] = "3" })
      local want = { "response.created", "response.queued" }
      for i = 2, #NORMAL do want[#want + 1] = NORMAL[i] end
      assert.are.same(want, types(events))
      assert.are.same(range(0, #events - 1), sequence_numbers(events))
      assert.are.equal("queued", events[1].data.response.status)
      assert.are.equal("in_progress", events[3].data.response.status)
      assert.are.equal("completed", events[#events].data.response.status)

      local again = stream("GET", "/responses/resp_mock1?stream=true&starting_after=4")
      assert.are.same(range(5, #events - 1), sequence_numbers(again))
      for i, e in ipairs(again) do assert.are.same(events[i + 5], e) end
      assert.are.same(events, stream("GET", "/responses/resp_mock1?stream=true"))
      assert.are.same({}, stream("GET", "/responses/resp_mock1?stream=true&starting_after=" .. (#events - 1)))
    end)

    it("follows a response still running until its last event", function()
      call("POST", "/responses", { model = "m", input = "x y", background = true }, { ["X-Mock-Background-Ms"] = "300" })
      local events = stream("GET", "/responses/resp_mock1?stream=true&starting_after=0")
      assert.are.same({ "response.queued", "response.in_progress" }, { types(events)[1], types(events)[2] })
      assert.are.equal("response.completed", types(events)[#events])
      assert.are.same(range(1, #events), sequence_numbers(events))
    end)

    it("ends the streams of a cancelled response", function()
      call("POST", "/responses", { model = "m", input = "x", background = true, stream = false },
        { ["X-Mock-Background-Ms"] = "60000" })
      call("POST", "/responses/resp_mock1/cancel")
      assert.are.same({ "response.created", "response.queued" }, types(stream("GET", "/responses/resp_mock1?stream=true")))
      local status, body = call("GET", "/responses/resp_mock1?stream=true&starting_after=x")
      assert_error(status, 400, body, "starting_after", "invalid_type")
    end)
  end)

  describe("input items", function()
    it("pages the stored input, newest first by default", function()
      call("POST", "/responses", { model = "m", input = { user("one"), user("two", "msg_given"), user("three") } })
      local status, page = call("GET", "/responses/resp_mock1/input_items?limit=2")
      assert.are.equal(200, status)
      assert.are.same({ object = "list", data = { input_message("msg_in2", "three"), input_message("msg_given", "two") },
        first_id = "msg_in2", last_id = "msg_given", has_more = true }, page)
      _, page = call("GET", "/responses/resp_mock1/input_items?limit=2&after=msg_given")
      assert.are.same({ object = "list", data = { input_message("msg_in1", "one") },
        first_id = "msg_in1", last_id = "msg_in1", has_more = false }, page)
      _, page = call("GET", "/responses/resp_mock1/input_items?order=asc")
      assert.are.equal("msg_in1", page.first_id)
      assert.are.equal("msg_in2", page.last_id)
      status, page = call("GET", "/responses/resp_mock1/input_items?limit=0")
      assert_error(status, 400, page, "limit", "integer_below_min_value")
      status, page = call("GET", "/responses/resp_nope/input_items")
      assert_error(status, 404, page)
    end)

    it("keeps a string input as one user message", function()
      call("POST", "/responses", { model = "m", input = "just text" })
      local _, page = call("GET", "/responses/resp_mock1/input_items")
      assert.are.same({ input_message("msg_in1", "just text") }, page.data)
    end)
  end)

  it("counts input tokens as words", function()
    local status, body = call("POST", "/responses/input_tokens",
      { model = "m", instructions = "two words", input = { user("three more words") } })
    assert.are.equal(200, status)
    assert.are.same({ object = "response.input_tokens", input_tokens = 5 }, body)
    status, body = call("POST", "/responses/input_tokens", { input = 5 })
    assert_error(status, 400, body, "input", "invalid_type")
  end)

  it("compacts a context to its user messages and one compaction item", function()
    call("POST", "/responses", { model = "m", input = "earlier words" })
    local status, body = call("POST", "/responses/compact",
      { model = "m", previous_response_id = "resp_mock1", input = { user("now"), { role = "assistant", content = "no" } } })
    assert.are.equal(200, status)
    assert.are.same({
      id = "resp_cmp2", object = "response.compaction", created_at = body.created_at,
      output = { input_message("msg_in1", "earlier words"), input_message("msg_in2", "now"),
        { id = "cmp_mock2", type = "compaction", encrypted_content = "mock-compaction-2" } },
      usage = { input_tokens = 3, input_tokens_details = { cached_tokens = 0, cache_write_tokens = 0 },
        output_tokens = 0, output_tokens_details = { reasoning_tokens = 0 }, total_tokens = 3 },
    }, body)
    status, body = call("POST", "/responses/compact", { model = "m", previous_response_id = "resp_nope" })
    assert_error(status, 404, body, "previous_response_id")
    status, body = call("POST", "/responses/compact", { input = "x" })
    assert_error(status, 400, body, "model", "missing_required_parameter")
  end)

  describe("conversations", function()
    it("creates, retrieves, updates and deletes", function()
      local status, c = call("POST", "/conversations", { metadata = { topic = "t" } })
      assert.are.equal(200, status)
      assert.are.same({ id = "conv_mock1", object = "conversation", created_at = c.created_at,
        metadata = { topic = "t" } }, c)
      local _, got = call("GET", "/conversations/conv_mock1")
      assert.are.same(c, got)
      status, got = call("POST", "/conversations/conv_mock1", { metadata = { topic = "u" } })
      assert.are.equal(200, status)
      assert.are.same({ topic = "u" }, got.metadata)
      status, got = call("POST", "/conversations/conv_mock1", {})
      assert_error(status, 400, got, "metadata", "missing_required_parameter")
      status, got = call("DELETE", "/conversations/conv_mock1")
      assert.are.same({ id = "conv_mock1", object = "conversation.deleted", deleted = true }, got)
      status, got = call("GET", "/conversations/conv_mock1")
      assert_error(status, 404, got)
      assert.are.equal("Conversation with id 'conv_mock1' not found.", got.error.message)
    end)

    it("takes an empty body", function()
      local status, c = raw("POST", "/conversations", "")
      assert.are.equal(200, status)
      assert.are.same({}, cjson.decode(c).metadata)
    end)

    it("adds, pages, retrieves and deletes items", function()
      local _, c = call("POST", "/conversations", { items = { user("first") } })
      local status, added = call("POST", "/conversations/" .. c.id .. "/items",
        { items = { user("second"), user("third", "msg_mine") } })
      assert.are.equal(200, status)
      assert.are.same({ object = "list", data = { input_message("msg_conv2", "second"), input_message("msg_mine", "third") },
        first_id = "msg_conv2", last_id = "msg_mine", has_more = false }, added)
      local _, page = call("GET", "/conversations/conv_mock1/items?limit=2")
      assert.are.same({ object = "list", data = { input_message("msg_mine", "third"), input_message("msg_conv2", "second") },
        first_id = "msg_mine", last_id = "msg_conv2", has_more = true }, page)
      _, page = call("GET", "/conversations/conv_mock1/items?after=msg_conv2")
      assert.are.same({ input_message("msg_conv1", "first") }, page.data)
      _, page = call("GET", "/conversations/conv_mock1/items?order=asc&limit=1")
      assert.are.equal("msg_conv1", page.first_id)
      local _, item = call("GET", "/conversations/conv_mock1/items/msg_mine")
      assert.are.same(input_message("msg_mine", "third"), item)
      local _, conv = call("DELETE", "/conversations/conv_mock1/items/msg_mine")
      assert.are.same(c, conv)
      status, item = call("GET", "/conversations/conv_mock1/items/msg_mine")
      assert_error(status, 404, item)
      status, item = call("DELETE", "/conversations/conv_mock1/items/msg_mine")
      assert_error(status, 404, item)
      status, item = call("GET", "/conversations/conv_nope/items")
      assert_error(status, 404, item)
      status, item = call("POST", "/conversations/conv_mock1/items", {})
      assert_error(status, 400, item, "items", "missing_required_parameter")
      local many = {}
      for i = 1, 21 do many[i] = user("m" .. i) end
      status, item = call("POST", "/conversations/conv_mock1/items", { items = many })
      assert_error(status, 400, item, "items", "array_above_max_length")
    end)

    it("collects the items of the responses made in it", function()
      call("POST", "/conversations", {})
      local _, r = call("POST", "/responses", { model = "m", input = "hi", conversation = "conv_mock1" })
      assert.are.same({ id = "conv_mock1" }, r.conversation)
      call("POST", "/responses", { model = "m", input = { user("again") }, conversation = { id = "conv_mock1" } },
        { ["X-Mock-Background-Ms"] = "0" })
      local _, page = call("GET", "/conversations/conv_mock1/items?order=asc")
      assert.are.same({
        input_message("msg_in1", "hi"), output_message("msg_mock1", "Echo: hi"),
        input_message("msg_in2", "again"), output_message("msg_mock2", "Echo: again"),
      }, page.data)
      local status, body = call("POST", "/responses", { model = "m", input = "x", conversation = "conv_nope" })
      assert_error(status, 404, body)
      status, body = call("POST", "/responses",
        { model = "m", input = "x", conversation = "conv_mock1", previous_response_id = "resp_mock1" })
      assert_error(status, 400, body, "conversation", "mutually_exclusive_parameters")
    end)

    it("adds a background response's items once it completes", function()
      call("POST", "/conversations", {})
      call("POST", "/responses", { model = "m", input = "bg", conversation = "conv_mock1", background = true },
        { ["X-Mock-Background-Ms"] = "20" })
      poll("resp_mock1", function(x) return x.status == "completed" end)
      local _, page = call("GET", "/conversations/conv_mock1/items")
      assert.are.same({ "msg_mock1", "msg_in1" }, { page.data[1].id, page.data[2].id })
    end)
  end)
end)
