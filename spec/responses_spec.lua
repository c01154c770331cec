-- The Responses API's methods, its typed event streams and what they add
-- up to, against scripted answers of the mock (what the mock keeps by
-- itself is in spec/mock_responses_spec.lua and the examples).
local openai = require("openai")
local mock = require("spec.helpers.mock")
local util = require("spec.helpers.util")

local KEY = "sk-test-responses-0123456789"

-- A Response with one message of one output_text part.
local function response(id, status, text)
  return {
    id = id, object = "response", created_at = 1741476542, status = status, model = "gpt-4o-mini",
    error = openai.null, incomplete_details = openai.null,
    output = { { type = "message", id = "msg_1", status = "completed", role = "assistant",
                 content = { { type = "output_text", text = text, annotations = openai.array() } } } },
    usage = { input_tokens = 3, output_tokens = 2, total_tokens = 5 },
  }
end

-- One typed event as the API sends it: its type as the SSE event name too.
local function event(kind, fields, sequence)
  fields.type, fields.sequence_number = kind, sequence
  return "event: " .. kind .. "\ndata: " .. openai.json.encode(fields) .. "\n\n"
end

-- A list of events and the function that adds the next, numbered from 0;
-- the first is response.created with an in-progress response `id`.
local function sequence(id)
  local list, n = {}, 0
  local function add(kind, fields)
    list[#list + 1] = event(kind, fields, n)
    n = n + 1
  end
  local created = response(id, "in_progress", "")
  created.output = openai.array()
  add("response.created", { response = created })
  return list, add
end

-- The events of a response whose text arrives as `pieces`, ended by
-- `terminal` (an event type, or nil for none).
local function events_of(pieces, terminal, final_response)
  local list, add = sequence("resp_1")
  add("response.output_item.added", { output_index = 0, item = { type = "message", id = "msg_1", status = "in_progress",
    role = "assistant", content = openai.array() } })
  add("response.content_part.added", { item_id = "msg_1", output_index = 0, content_index = 0,
    part = { type = "output_text", text = "", annotations = openai.array() } })
  for _, piece in ipairs(pieces) do
    add("response.output_text.delta", { item_id = "msg_1", output_index = 0, content_index = 0, delta = piece })
  end
  if terminal then add(terminal, { response = final_response }) end
  return list
end

local function sse(list, extra)
  local r = { status = 200, headers = { ["content-type"] = "text/event-stream" }, sse = list, sse_end = "finish" }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

describe("responses", function()
  local server, client
  local session = mock.session({ api_key = KEY }, { max_retries = 0 }, function(s, c) server, client = s, c end)
  setup(session.setup)
  teardown(session.teardown)
  before_each(session.before_each)

  local function only_request()
    local log = server:requests()
    assert.are.equal(1, #log)
    return log[1]
  end

  it("create sends the body as JSON and returns the Response exactly, with its text from output_text", function()
    server:script { { status = 200, json = response("resp_1", "completed", "Hello there"),
                      headers = { ["x-request-id"] = "req_r1" } } }
    local r, err = client.responses.create { model = "gpt-4o-mini", input = "hi", store = false }
    assert.is_nil(err)
    assert.are.equal("resp_1", r.id)
    assert.are.equal("completed", r.status)
    assert.are.equal(openai.null, r.error)
    assert.are.equal("req_r1", r._request_id)
    assert.are.equal("Hello there", openai.output_text(r))
    local keys = {}
    for key in pairs(r) do keys[#keys + 1] = key end
    table.sort(keys)
    assert.are.same({ "created_at", "error", "id", "incomplete_details", "model", "object", "output", "status", "usage" },
      keys)
    local req = only_request()
    assert.are.same({ "POST", "/v1/responses" }, { req.method, req.path })
    assert.are.same({ model = "gpt-4o-mini", input = "hi", store = false }, require("cjson").decode(req.body))
    assert.are.equal("application/json", server:header(req, "content-type"))
  end)

  it("output_text joins every output_text part of every message, skipping the rest", function()
    local r = {
      output = {
        { type = "reasoning", id = "rs_1", summary = {} },
        { type = "message", content = { { type = "output_text", text = "a" }, { type = "refusal", refusal = "no" },
                                        { type = "output_text", text = "b" } } },
        { type = "function_call", arguments = "{}" },
        { type = "message", content = { { type = "output_text", text = "c" } } },
      },
    }
    assert.are.equal("abc", openai.output_text(r))
    assert.are.equal("", openai.output_text({}))
    assert.are.equal("", openai.output_text({ output = "nonsense" }))
    assert.has_error(function() openai.output_text("resp_1") end,
      "bad argument #1 to 'output_text' (Response table expected, got string)")
  end)

  it("a stream gives each typed event as sent; final() is the Response of response.completed", function()
    local done = response("resp_1", "completed", "Hel lo")
    server:script { sse(events_of({ "Hel", " lo" }, "response.completed", done)) }
    local stream = assert(client.responses.create { model = "gpt-4o-mini", input = "hi", stream = true })
    assert.matches("^openai%.ResponseStream %(open%)$", tostring(stream))
    local kinds, sequence = {}, {}
    for _ = 1, 6 do
      local e = assert(stream:next())
      kinds[#kinds + 1] = e.type
      sequence[#sequence + 1] = e.sequence_number
    end
    assert.are.same({ "response.created", "response.output_item.added", "response.content_part.added",
      "response.output_text.delta", "response.output_text.delta", "response.completed" }, kinds)
    assert.are.same({ 0, 1, 2, 3, 4, 5 }, sequence)
    local final = assert(stream:final())
    assert.are.equal("completed", final.status)
    assert.are.equal("Hel lo", openai.output_text(final))
    local req = only_request()
    assert.are.equal("text/event-stream", server:header(req, "accept"))
    assert.are.equal(true, require("cjson").decode(req.body).stream)
  end)

  it("final() after a stream that ended without a terminal event: nil, an APIError with the assembled response", function()
    server:script { sse(events_of({ "par", "tial" }, nil)) }
    local stream = assert(client.responses.create { model = "m", input = "x", stream = true })
    local final, err = stream:final()
    assert.is_nil(final)
    assert.are.same({ "APIError", "the stream ended without a response.completed event" }, { err.name, err.message })
    assert.are.equal("in_progress", err.response.status)
    assert.are.equal("partial", openai.output_text(err.response))
  end)

  for _, case in ipairs {
    { "response.failed", "failed", { error = { code = "server_error", message = "mock failure" } },
      "the response failed: mock failure" },
    { "response.incomplete", "incomplete", { incomplete_details = { reason = "max_output_tokens" } },
      "the response is incomplete: max_output_tokens" },
  } do
    local kind, status, fields, message = case[1], case[2], case[3], case[4]
    it(("a stream ended by %s: next() gives the event, final() nil and an APIError with that response"):format(kind),
      function()
        local last = response("resp_1", status, "so far")
        for k, v in pairs(fields) do last[k] = v end
        server:script { sse(events_of({ "so far" }, kind, last)) }
        local stream = assert(client.responses.create { model = "m", input = "x", stream = true })
        local seen
        while true do
          local e, err = stream:next()
          assert.is_nil(err)
          if e == nil then break end
          seen = e.type
        end
        assert.are.equal(kind, seen)
        local final, err = stream:final()
        assert.is_nil(final)
        assert.are.same({ "APIError", message, status }, { err.name, err.message, err.response.status })
        assert.are.equal("so far", openai.output_text(err.response))
      end)
  end

  it("the assembled response folds function call arguments, refusals and the .done events' whole values", function()
    local list, add = sequence("resp_f")
    add("response.output_item.added", { output_index = 0, item = { type = "function_call", id = "fc_1",
      call_id = "call_1", name = "get_weather", arguments = "" } })
    add("response.function_call_arguments.delta", { item_id = "fc_1", output_index = 0, delta = '{"city":' })
    add("response.function_call_arguments.delta", { item_id = "fc_1", output_index = 0, delta = '"Paris"}' })
    -- output index 2 before 1: a gap, filled with null meanwhile
    add("response.output_item.added", { output_index = 2, item = { type = "message", id = "msg_3", role = "assistant",
      content = openai.array() } })
    add("response.content_part.added", { item_id = "msg_3", output_index = 2, content_index = 0,
      part = { type = "refusal", refusal = "" } })
    add("response.refusal.delta", { item_id = "msg_3", output_index = 2, content_index = 0, delta = "I can" })
    add("response.refusal.delta", { item_id = "msg_3", output_index = 2, content_index = 0, delta = "not." })
    add("response.output_item.added", { output_index = 1, item = { type = "message", id = "msg_2", role = "assistant",
      content = openai.array() } })
    add("response.content_part.added", { item_id = "msg_2", output_index = 1, content_index = 0,
      part = { type = "output_text", text = "", annotations = openai.array() } })
    add("response.output_text.delta", { item_id = "msg_2", output_index = 1, content_index = 0, delta = "draft" })
    add("response.output_text.done", { item_id = "msg_2", output_index = 1, content_index = 0, text = "final text" })
    -- nonsense the fold must skip: unknown indexes, wrong types, unknown events
    add("response.output_text.delta", { output_index = 9, content_index = 0, delta = "lost" })
    add("response.output_text.delta", { output_index = -1, content_index = 0, delta = "lost" })
    add("response.output_text.delta", { output_index = 1, content_index = 0, delta = 42 })
    add("response.some_future_event", { whatever = true })
    server:script { sse(list) }
    local stream = assert(client.responses.create { model = "m", input = "x", stream = true })
    local final, err = stream:final()
    assert.is_nil(final)
    local output = err.response.output
    assert.are.same({ "function_call", '{"city":"Paris"}' }, { output[1].type, output[1].arguments })
    assert.are.same({ "msg_2", "final text" }, { output[2].id, output[2].content[1].text })
    assert.are.same({ "msg_3", "I cannot." }, { output[3].id, output[3].content[1].refusal })
    assert.are.equal(3, #output)
    assert.are.equal("final text", openai.output_text(err.response))
  end)

  it("the .done events of a part and an item replace what the deltas built", function()
    local list, add = sequence("resp_d")
    local item = { type = "message", id = "msg_1", status = "in_progress", role = "assistant", content = openai.array() }
    add("response.output_item.added", { output_index = 0, item = item })
    add("response.content_part.added", { item_id = "msg_1", output_index = 0, content_index = 0,
      part = { type = "output_text", text = "", annotations = openai.array() } })
    add("response.output_text.delta", { item_id = "msg_1", output_index = 0, content_index = 0, delta = "dra" })
    add("response.output_text.delta", { item_id = "msg_1", output_index = 0, content_index = 0, delta = "ft" })
    add("response.content_part.done", { item_id = "msg_1", output_index = 0, content_index = 0,
      part = { type = "output_text", text = "part done", annotations = openai.array() } })
    add("response.output_text.delta", { item_id = "msg_1", output_index = 0, content_index = 0, delta = "+" })
    add("response.output_item.done", { output_index = 0, item = { type = "message", id = "msg_1", status = "completed",
      role = "assistant", content = { { type = "output_text", text = "item done", annotations = openai.array() } } } })
    server:script { sse(list) }
    local stream = assert(client.responses.create { model = "m", input = "x", stream = true })
    local _, err = stream:final()
    local out = err.response.output[1]
    assert.are.same({ "completed", "item done" }, { out.status, out.content[1].text })
    assert.are.equal("item done", openai.output_text(err.response))
  end)

  it("the events a caller was given are not changed by the folding", function()
    local done = response("resp_1", "completed", "ab")
    server:script { sse(events_of({ "a", "b" }, "response.completed", done)) }
    local stream = assert(client.responses.create { model = "m", input = "x", stream = true })
    local added
    for _ = 1, 3 do added = assert(stream:next()) end
    assert.are.equal("response.content_part.added", added.type)
    assert(stream:final())
    assert.are.equal("", added.part.text) -- the deltas went to the snapshot's own copy
  end)

  it("an error event ends the stream with an APIError carrying its code and message", function()
    local list = events_of({ "a" }, nil)
    list[#list + 1] = 'event: error\ndata: {"type":"error","code":"server_error","message":"mock error event",'
      .. '"param":null,"sequence_number":4}\n\n'
    server:script { sse(list, { headers = { ["content-type"] = "text/event-stream", ["x-request-id"] = "req_e" } }) }
    local stream = assert(client.responses.create { model = "m", input = "x", stream = true })
    for _ = 1, 4 do assert(stream:next()) end
    local e, err = stream:next()
    assert.is_nil(e)
    assert.are.same({ "APIError", "mock error event", "server_error", "req_e" },
      { err.name, err.message, err.code, err.request_id })
    assert.are.same({ nil, err }, { stream:next() })
  end)

  it("a connection lost mid-stream is an APIConnectionError from next()", function()
    server:script { sse(events_of({ "a", "b" }, nil), { sse_end = "close" }) }
    local stream = assert(client.responses.create { model = "m", input = "x", stream = true })
    local err
    for _ = 1, 10 do
      local e, problem = stream:next()
      if e == nil then
        err = problem
        break
      end
    end
    assert.are.equal("APIConnectionError", err.name)
  end)

  it("retrieve with stream = true resumes the events after starting_after, over a GET", function()
    local done = response("resp_bg", "completed", "b")
    server:script { sse { event("response.output_text.delta", { item_id = "msg_1", output_index = 0, content_index = 0,
                                delta = "b" }, 4),
                          event("response.completed", { response = done }, 5) } }
    local stream = assert(client.responses.retrieve("resp_bg", { stream = true, starting_after = 3 }))
    local first = assert(stream:next())
    assert.are.same({ "response.output_text.delta", 4, "b" }, { first.type, first.sequence_number, first.delta })
    local final = assert(stream:final())
    assert.are.equal("resp_bg", final.id)
    local req = only_request()
    assert.are.same({ "GET", "/v1/responses/resp_bg", "starting_after=3&stream=true", "" },
      { req.method, req.path, req.query, req.body })
    assert.are.equal("text/event-stream", server:header(req, "accept"))
    assert.is_nil(server:header(req, "content-type"))
  end)

  it("retrieve without stream returns the Response; include goes as include[]", function()
    server:script { { status = 200, json = response("resp_1", "completed", "x") } }
    local r = assert(client.responses.retrieve("resp_1", { include = { "message.output_text.logprobs" } }))
    assert.are.equal("resp_1", r.id)
    assert.are.equal("include%5B%5D=message.output_text.logprobs", only_request().query)
  end)

  it("delete gives true for an empty 200, and the object when there is one", function()
    server:script { { status = 200, body = "" },
                    { status = 200, json = { id = "resp_2", object = "response.deleted", deleted = true } } }
    assert.are.same({ n = 1, true }, util.pack(client.responses.delete("resp_1")))
    local deleted = assert(client.responses.delete("resp_2"))
    assert.are.same({ "resp_2", true }, { deleted.id, deleted.deleted })
    local log = server:requests()
    assert.are.same({ "DELETE", "/v1/responses/resp_1" }, { log[1].method, log[1].path })
  end)

  it("cancel is a POST without a body (and without a Content-Type)", function()
    server:script { { status = 200, json = response("resp_bg", "cancelled", "") } }
    local r = assert(client.responses.cancel("resp_bg"))
    assert.are.equal("cancelled", r.status)
    local req = only_request()
    assert.are.same({ "POST", "/v1/responses/resp_bg/cancel", "" }, { req.method, req.path, req.body })
    assert.is_nil(server:header(req, "content-type"))
    assert.are.equal("0", server:header(req, "content-length"))
  end)

  it("input_items.list is a page whose next page asks after the last item", function()
    server:script {
      { status = 200, json = { object = "list", data = { { id = "msg_a", type = "message" } }, first_id = "msg_a",
                               last_id = "msg_a", has_more = true } },
      { status = 200, json = { object = "list", data = { { id = "msg_b", type = "message" } }, first_id = "msg_b",
                               last_id = "msg_b", has_more = false } },
    }
    local page = assert(client.responses.input_items.list("resp_1", { limit = 1, order = "asc" }))
    assert.are.equal("msg_a", page.data[1].id)
    local second = assert(page:next_page())
    assert.are.equal("msg_b", second.data[1].id)
    assert.is_false(second:has_next_page())
    local log = server:requests()
    assert.are.same({ "/v1/responses/resp_1/input_items", "limit=1&order=asc" }, { log[1].path, log[1].query })
    assert.are.equal("after=msg_a&limit=1&order=asc", log[2].query)
  end)

  it("input_tokens.count and compact POST their bodies to their paths", function()
    server:script { { status = 200, json = { object = "response.input_tokens", input_tokens = 7 } },
                    { status = 200, json = { id = "cmp_1", object = "response.compaction" } } }
    local counted = assert(client.responses.input_tokens.count { model = "gpt-4o-mini", input = "a b c" })
    assert.are.equal(7, counted.input_tokens)
    assert.are.equal("cmp_1", assert(client.responses.compact { model = "gpt-4o-mini", input = "a" }).id)
    local log = server:requests()
    assert.are.same({ "/v1/responses/input_tokens", "/v1/responses/compact" }, { log[1].path, log[2].path })
    assert.are.same({ model = "gpt-4o-mini", input = "a b c" }, require("cjson").decode(log[1].body))
  end)

  it("an error status is an error object, as for every method", function()
    server:script { { status = 404, json = { error = { message = "No response found with id 'resp_x'.",
                                                      type = "invalid_request_error", code = "not_found" } } } }
    local r, err = client.responses.retrieve("resp_x")
    assert.is_nil(r)
    assert.are.same({ "NotFoundError", 404, "not_found" }, { err.name, err.status, err.code })
  end)

  it("bad arguments raise before any request", function()
    assert.has_error(function() client.responses.retrieve("") end,
      "bad argument #1 to 'responses.retrieve' (response_id must be a non-empty string, got an empty string)")
    assert.has_error(function() client.responses.create("hi") end,
      "bad argument #1 to 'responses.create' (params must be a table)")
    assert.has_error(function() client.responses.input_items.list("resp_1", "x") end,
      "bad argument #2 to 'responses.input_items.list' (query must be a table)")
    assert.are.equal(0, #server:requests())
  end)
end)
