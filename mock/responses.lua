-- The Responses resource: create (plain, streamed, in the background),
-- retrieve (also as a resumable stream), delete, cancel, input items, input
-- token counts and compaction.
--
-- Every response runs through one event producer (`events` below): a
-- streamed response sends its events as they come, a plain one drains them,
-- a background one takes them on timers and keeps them for replay.  The
-- producer updates the stored Response as it goes, so a retrieve shows the
-- response as far as it got.
--
-- Streamed events are `event: <type>` + `data: <json>` pairs with a
-- sequence_number from 0.  The stream simply ends after the terminal event:
-- unlike chat completions, the Responses API sends no `data: [DONE]`.

local json = require("mock.json")
local http = require("mock.http")
local wire = require("mock.wire")
local items = require("mock.items")
local Conversations = require("mock.conversations")

local M = {}
M.__index = M

local null = json.null
local ONE = json.number("1.0")

-- Failing, incomplete and error outcomes stop after this many text deltas.
local FEW_DELTAS = 2
local DEFAULT_BACKGROUND_MS = 200
local OUTCOMES = { completed = true, failed = true, incomplete = true, error = true }

-- Handed back between events by a background response's producer: stop
-- here until the next timer.  Empty, so a plain stream's pump would skip it.
local PAUSE = ""

function M.new(conversations, created_base)
  return setmetatable({
    conversations = conversations, created_base = created_base,
    by_id = {}, seq = 0, running = {},
    input_id = items.counter("msg_in"),
  }, M)
end

local function not_found(id)
  return wire.error_body(string.format("Response with id '%s' not found.", id))
end

-- The run of a request, or nil after sending the 404.
function M:find(res, id)
  local r = self.by_id[id]
  if not r then res:send(404, not_found(id)) end
  return r
end

---------------------------------------------------------------------------
-- Objects
---------------------------------------------------------------------------

-- A request member, or `default` when the request left it out.
local function given(body, key, default)
  local v = body[key]
  if v == nil then return default end
  return v
end

-- The Response at creation: the request's settings echoed, no output yet.
local function response_object(r)
  local b = r.body
  local md = b.metadata
  return json.obj(
    "id", r.id,
    "object", "response",
    "created_at", r.created_at,
    "status", r.background and "queued" or "in_progress",
    "background", r.background,
    "completed_at", null,
    "conversation", r.conversation and json.obj("id", r.conversation.obj.id) or null,
    "error", null,
    "incomplete_details", null,
    "instructions", given(b, "instructions", null),
    "max_output_tokens", given(b, "max_output_tokens", null),
    "max_tool_calls", given(b, "max_tool_calls", null),
    "model", b.model,
    "output", json.array(),
    "parallel_tool_calls", given(b, "parallel_tool_calls", true),
    "previous_response_id", given(b, "previous_response_id", null),
    "reasoning", json.obj("effort", null, "summary", null),
    "service_tier", "default",
    "store", b.store ~= false,
    "temperature", given(b, "temperature", ONE),
    "text", given(b, "text", json.obj("format", json.obj("type", "text"), "verbosity", "medium")),
    "tool_choice", given(b, "tool_choice", "auto"),
    "tools", given(b, "tools", json.array()),
    "top_logprobs", given(b, "top_logprobs", 0),
    "top_p", given(b, "top_p", ONE),
    "truncation", given(b, "truncation", "disabled"),
    "metadata", json.is_object(md) and md or json.obj())
end

local function usage(input_tokens, output_tokens)
  return json.obj(
    "input_tokens", input_tokens,
    "input_tokens_details", json.obj("cached_tokens", 0, "cache_write_tokens", 0),
    "output_tokens", output_tokens,
    "output_tokens_details", json.obj("reasoning_tokens", 0),
    "total_tokens", input_tokens + output_tokens)
end

-- What each terminal status sets on the Response besides itself.
local ENDINGS = {
  completed = function(resp) json.set(resp, "completed_at", resp.created_at + 1) end,
  failed = function(resp, message)
    json.set(resp, "error", json.obj("code", "server_error", "message", message))
  end,
  incomplete = function(resp)
    json.set(resp, "incomplete_details", json.obj("reason", "max_output_tokens"))
  end,
}

-- The response reaches a terminal status after `n` output pieces.  Its
-- items join its conversation when it produced something to keep.
function M:finish(r, status, n, message)
  local resp = r.resp
  resp.status = status
  ENDINGS[status](resp, message)
  json.set(resp, "usage", usage(r.input_tokens, n))
  if r.conversation and status ~= "failed" then
    Conversations.append(r.conversation, r.input_items)
    Conversations.append(r.conversation, { json.copy(resp.output[1]) })
  end
end

---------------------------------------------------------------------------
-- The event producer
---------------------------------------------------------------------------

-- r's events as a function returning the next event object, PAUSE (in the
-- background only) or nil after the last.
function M:events(r)
  local seq = -1
  local resp = r.resp
  local function emit(etype, ...)
    seq = seq + 1
    coroutine.yield(json.obj("type", etype, "sequence_number", seq, ...))
  end
  local function pause()
    if r.background then coroutine.yield(PAUSE) end
  end
  local function text_event(etype, item, ...)
    emit(etype, "item_id", item.id, "output_index", 0, "content_index", 0, ...)
  end

  return coroutine.wrap(function()
    emit("response.created", "response", resp)
    if r.background then emit("response.queued", "response", resp) end
    pause()
    resp.status = "in_progress"
    emit("response.in_progress", "response", resp)
    pause()

    local item = json.obj("id", "msg_mock" .. r.n, "type", "message", "status", "in_progress",
      "content", json.array(), "role", "assistant")
    resp.output[1] = item
    emit("response.output_item.added", "output_index", 0, "item", item)
    local part = items.text_part("assistant", "")
    text_event("response.content_part.added", item, "part", part)
    item.content[1] = part

    local n = r.outcome == "completed" and r.count or math.min(r.count, FEW_DELTAS)
    for i = 1, n do
      text_event("response.output_text.delta", item, "delta", r.piece(i), "logprobs", json.array())
    end
    part.text = wire.joined(n, r.piece)

    if r.outcome == "error" then
      self:finish(r, "failed", n, "mock error event")
      emit("error", "code", "server_error", "message", "mock error event", "param", null)
      return
    end
    if r.outcome ~= "completed" then
      item.status = "incomplete"
      self:finish(r, r.outcome, n, "mock failure")
      emit("response." .. r.outcome, "response", resp)
      return
    end
    text_event("response.output_text.done", item, "text", part.text, "logprobs", json.array())
    text_event("response.content_part.done", item, "part", part)
    item.status = "completed"
    emit("response.output_item.done", "output_index", 0, "item", item)
    self:finish(r, "completed", n)
    emit("response.completed", "response", resp)
  end)
end

local function sse(event)
  return "event: " .. event.type .. "\ndata: " .. json.encode(event) .. "\n\n"
end

---------------------------------------------------------------------------
-- Background runs: timers, kept events, followers
---------------------------------------------------------------------------

-- A timer of the server, not of a connection: a background response goes
-- on after the request that made it has gone.
local function after(r, ms, fn)
  http.one_shot(r.timers, ms, function()
    local ok, err = pcall(fn)
    if not ok and os.getenv("MOCK_DEBUG") then io.stderr:write("mock server: background: ", tostring(err), "\n") end
  end)
end

-- Ends a follower's stream (the terminating chunk, then the next request).
local function end_stream(res)
  res:write(http.LAST_CHUNK, function(err)
    if not err then res:finish(res.chunked_close) end
  end)
end

-- The run is over (ended, cancelled, deleted or reset): no more timers, every
-- follower's stream ends.
function M:stop(r)
  http.close_timers(r.timers)
  r.timers = {}
  r.done = true
  self.running[r] = nil
  for res in pairs(r.followers) do end_stream(res) end
  r.followers = {}
end

-- Keeps an event and sends it to the followers still connected.
local function publish(r, event)
  local text = sse(event)
  r.kept[#r.kept + 1] = { seq = event.sequence_number, text = text }
  for res in pairs(r.followers) do
    if res.conn.closed then r.followers[res] = nil else res:write(http.chunk(text)) end
  end
end

-- Takes events until the producer pauses or ends.
function M:advance(r)
  while not r.done do
    local event = r.next()
    if event == nil then return self:stop(r) end
    if event == PAUSE then return end
    publish(r, event)
  end
end

-- Queued now, in progress at half the time, ended at the full time.
function M:start_background(r, ms)
  r.kept, r.followers, r.timers = {}, {}, {}
  self.running[r] = true
  self:advance(r)
  after(r, ms / 2, function() self:advance(r) end)
  after(r, ms, function() self:advance(r) end)
end

-- Streams r's kept events after sequence number `after_seq`, then the new
-- ones as they happen, ending after the last.
function M:follow(r, req, res, after_seq)
  res:start_chunked(200, "text/event-stream", nil, not req.keep_alive)
  for _, e in ipairs(r.kept) do
    if e.seq > after_seq then res:write(http.chunk(e.text)) end
  end
  if r.done then return end_stream(res) end
  r.followers[res] = true
end

-- Stops every background run (the server's reset).
function M:close()
  for r in pairs(self.running) do self:stop(r) end
end

---------------------------------------------------------------------------
-- Create
---------------------------------------------------------------------------

local function header_outcome(req)
  local outcome = http.header(req.headers, "x-mock-response-outcome") or "completed"
  if not OUTCOMES[outcome] then
    return nil, wire.error_body("X-Mock-Response-Outcome must be completed, failed, incomplete or error")
  end
  return outcome
end

local function header_background_ms(req)
  local ms = http.header(req.headers, "x-mock-background-ms")
  if ms == nil then return DEFAULT_BACKGROUND_MS end
  if not ms:match("^%d+$") then return nil, wire.error_body("X-Mock-Background-Ms must be a non-negative integer") end
  return tonumber(ms)
end

-- The optional members a create body may carry, with their kinds.
local OPTIONAL = {
  { "instructions", "string" }, { "metadata", "object" }, { "previous_response_id", "string" },
  { "stream", "boolean" }, { "background", "boolean" }, { "store", "boolean" }, { "tools", "array" },
}

-- nil when the members of OPTIONAL are of their kinds, else the 400 body.
local function check_optional(body)
  for _, o in ipairs(OPTIONAL) do
    local bad = wire.check_optional(body, o[1], o[2])
    if bad then return bad end
  end
  return nil
end

local function check_model(body)
  if body.model == nil or body.model == null then return wire.missing("model") end
  if type(body.model) ~= "string" then return wire.invalid_type("model", "a string", body.model) end
  return nil
end

-- The conversation id a create body names (a string or {id=...}), or nil;
-- or false and the 400 body.
local function conversation_id(body)
  local c = body.conversation
  if c == nil or c == null then return nil end
  if json.is_object(c) then c = c.id end
  if type(c) ~= "string" then
    return false, wire.invalid_type("conversation", "a string or an object with an id", body.conversation)
  end
  if body.previous_response_id ~= nil and body.previous_response_id ~= null then
    return false, wire.error_body("Mutually exclusive parameters: Ensure you are only providing one of: " ..
      "'previous_response_id' or 'conversation'.", "conversation", "mutually_exclusive_parameters")
  end
  return c
end

-- The checked body of a create request, or nil after sending the 400/404.
function M:create_body(req, res)
  local body, bad = wire.body_object(req)
  bad = bad or check_model(body) or check_optional(body)
  if not bad and body.input == nil then bad = wire.missing("input") end
  bad = bad or items.check(body.input, "input")
  if not bad and body.background == true and body.store == false then
    bad = wire.error_body("Background mode requires store=true.", "background")
  end
  if bad then return res:send(400, bad) end
  return body
end

function M:create(req, res)
  local body = self:create_body(req, res)
  if not body then return end
  local conv_id, bad = conversation_id(body)
  local count, piece = wire.reply_pieces(req, items.last_text(body.input))
  local outcome, bad_outcome = header_outcome(req)
  local ms, bad_ms = header_background_ms(req)
  bad = bad or (not count and piece) or bad_outcome or bad_ms
  if bad then return res:send(400, bad) end
  local conv = conv_id and self.conversations:get(conv_id)
  if conv_id and not conv then return res:send(404, self.conversations.not_found(conv_id)) end

  self.seq = self.seq + 1
  local r = {
    n = self.seq, id = "resp_mock" .. self.seq, created_at = self.created_base + self.seq,
    body = body, background = body.background == true, conversation = conv,
    count = count, piece = piece, outcome = outcome,
    input_items = items.store(body.input, self.input_id),
    input_tokens = items.count_tokens(body.input, body.instructions),
  }
  r.resp = response_object(r)
  r.next = self:events(r)
  if body.store ~= false then self.by_id[r.id] = r end

  if r.background then
    self:start_background(r, ms)
    if body.stream == true then return self:follow(r, req, res, -1) end
    return res:send(200, json.encode(r.resp))
  end
  if body.stream == true then
    res:start_chunked(200, "text/event-stream", nil, not req.keep_alive)
    return res:pump(function()
      local event = r.next()
      return event and sse(event)
    end)
  end
  while r.next() do end
  if outcome == "error" then
    return res:send(500, wire.error_body("mock error event", nil, "server_error", "server_error"))
  end
  res:send(200, json.encode(r.resp))
end

---------------------------------------------------------------------------
-- Retrieve, delete, cancel, input items
---------------------------------------------------------------------------

-- GET: the Response, or with ?stream=true its events after starting_after.
M.retrieve = wire.on_found(function(self, req, res, r)
  local q = wire.parse_query(req.query)
  if q.stream ~= "true" then return res:send(200, json.encode(r.resp)) end
  if not r.kept then
    return res:send(400, wire.error_body("Only responses created with background=true can be streamed again.",
      "stream"))
  end
  local after_seq = -1
  if q.starting_after ~= nil then
    if not q.starting_after:match("^%-?%d+$") then
      return res:send(400, wire.error_body(string.format(
        "Invalid 'starting_after': expected an integer, but got '%s' instead.", q.starting_after),
        "starting_after", "invalid_type"))
    end
    after_seq = tonumber(q.starting_after)
  end
  self:follow(r, req, res, after_seq)
end)

M.delete = wire.on_found(function(self, _, res, r)
  if r.kept then self:stop(r) end
  self.by_id[r.id] = nil
  res:send(200, json.encode(json.obj("id", r.id, "object", "response", "deleted", true)))
end)

-- Only background responses can be cancelled; one already ended is
-- returned as it is.
M.cancel = wire.on_found(function(self, _, res, r)
  if not r.background then
    return res:send(400, wire.error_body("Only responses created with background=true can be cancelled."))
  end
  if not r.done then
    r.resp.status = "cancelled"
    self:stop(r)
  end
  res:send(200, json.encode(r.resp))
end)

-- Newest first unless asked otherwise, like the real list.
M.input_items = wire.on_found(function(_, req, res, r)
  wire.send_page(req, res, r.input_items, "desc")
end)

---------------------------------------------------------------------------
-- Input tokens and compaction
---------------------------------------------------------------------------

-- The optional input of a body, checked: the input or nil, or false after
-- sending the 400.
local function optional_input(body, res)
  local input = body.input
  if input == nil or input == null then return nil end
  local bad = items.check(input, "input")
  if bad then
    res:send(400, bad)
    return false
  end
  return input
end

function M:input_tokens(req, res)
  local body, bad = wire.body_object(req)
  bad = bad or wire.check_optional(body, "model", "string") or wire.check_optional(body, "instructions", "string")
  if bad then return res:send(400, bad) end
  local input = optional_input(body, res)
  if input == false then return end
  res:send(200, json.encode(json.obj("object", "response.input_tokens",
    "input_tokens", items.count_tokens(input, body.instructions))))
end

-- Like the real API: the user messages of the context (a previous
-- response's input, then this input) stay, the rest becomes one opaque
-- compaction item.
function M:compact(req, res)
  local body, bad = wire.body_object(req)
  bad = bad or check_model(body) or wire.check_optional(body, "previous_response_id", "string")
    or wire.check_optional(body, "instructions", "string")
  if bad then return res:send(400, bad) end
  local input = optional_input(body, res)
  if input == false then return end
  local context = {}
  local prev_id = body.previous_response_id
  if type(prev_id) == "string" then
    local prev = self.by_id[prev_id]
    if not prev then
      return res:send(404, wire.error_body(string.format("Previous response with id '%s' not found.", prev_id),
        "previous_response_id"))
    end
    context = prev.input_items
  end
  self.seq = self.seq + 1
  local output, words = json.array(), 0
  local function keep(item)
    if item.type == "message" and item.role == "user" then
      output[#output + 1] = item
      words = words + items.count_tokens({ item })
    end
  end
  for _, item in ipairs(context) do keep(item) end
  for _, item in ipairs(items.store(input, self.input_id)) do keep(item) end
  output[#output + 1] = json.obj("id", "cmp_mock" .. self.seq, "type", "compaction",
    "encrypted_content", "mock-compaction-" .. self.seq)
  res:send(200, json.encode(json.obj(
    "id", "resp_cmp" .. self.seq,
    "object", "response.compaction",
    "created_at", self.created_base + self.seq,
    "output", output,
    "usage", usage(words, 0))))
end

return M
