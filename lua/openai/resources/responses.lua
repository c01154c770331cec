-- responses: the Responses API declared as data (see openai.resources), and
-- what its streams add up to. A streamed response is a sequence of typed
-- events (`type`, `sequence_number`); the Response that final() returns
-- is the one the terminal `response.completed` event carries, exactly as
-- sent. The events before it are also folded into a snapshot, so that a
-- stream that ends otherwise still shows what had arrived.
local core = require("openai.core")
local compat = require("openai.compat")
local errors = require("openai.errors")

local responses = {}

-- Every read checks the type before using a value.
local shape = require("openai.shape")
local is_array, is_object = shape.is_array, shape.is_object

-- A copy the snapshot may change without changing the event the caller
-- was given.
local function copy(value)
  if type(value) ~= "table" then return value end
  local result = setmetatable({}, getmetatable(value) == core.array_mt and core.array_mt or nil)
  for key, member in pairs(value) do result[key] = copy(member) end
  return result
end

-- An output_index or content_index: an integral number in 0 .. 2^53 - 1,
-- as a 1-based position; else nil.
local function position(value)
  local index = compat.tointeger(value)
  if index == nil or index < 0 or index > 2 ^ 53 - 1 then return nil end
  return index + 1
end

-- The output item an event names (by output_index), if the snapshot has it.
local function item_of(acc, event)
  local snapshot, at = acc.snapshot, position(event.output_index)
  if snapshot == nil or at == nil or not is_array(snapshot.output) then return nil end
  local item = snapshot.output[at]
  return is_object(item) and item or nil
end

-- The content part an event names (by output_index and content_index).
local function part_of(acc, event)
  local item, at = item_of(acc, event), position(event.content_index)
  if item == nil or at == nil or not is_array(item.content) then return nil end
  local part = item.content[at]
  return is_object(part) and part or nil
end

-- Deltas are kept as pieces, joined when the snapshot is read: appending to
-- a string on each delta would copy the text over and over.
local function add_piece(acc, owner, field, piece)
  if owner == nil or type(piece) ~= "string" then return end
  local by_field = acc.pieces[owner]
  if by_field == nil then
    by_field = {}
    acc.pieces[owner] = by_field
  end
  local list = by_field[field]
  if list == nil then
    list = { type(owner[field]) == "string" and owner[field] or nil }
    by_field[field] = list
  end
  list[#list + 1] = piece
end

-- A `.done` event's whole value replaces the pieces.
local function set_whole(acc, owner, field, value)
  if owner == nil or type(value) ~= "string" then return end
  owner[field] = value
  if acc.pieces[owner] then acc.pieces[owner][field] = nil end
end

-- Puts value (copied) at the 1-based position `at` of the array list,
-- filling any gap before it with null.
local function put(list, at, value)
  for i = #list + 1, at - 1 do list[i] = core.null end
  list[at] = copy(value)
end

local TERMINAL = { ["response.completed"] = true, ["response.failed"] = true, ["response.incomplete"] = true }

-- An output item added (or, done, replaced) at its output_index.
local function put_item(acc, event)
  local snapshot, at = acc.snapshot, position(event.output_index)
  if snapshot == nil or at == nil or not is_object(event.item) then return end
  if not is_array(snapshot.output) then snapshot.output = setmetatable({}, core.array_mt) end
  put(snapshot.output, at, event.item)
end

-- What each event type does to the snapshot.
local FOLD = {
  ["response.output_item.added"] = put_item,
  ["response.content_part.added"] = function(acc, event)
    local item, at = item_of(acc, event), position(event.content_index)
    if item == nil or at == nil or not is_object(event.part) then return end
    if not is_array(item.content) then item.content = setmetatable({}, core.array_mt) end
    put(item.content, at, event.part)
  end,
  ["response.output_text.delta"] = function(acc, event) add_piece(acc, part_of(acc, event), "text", event.delta) end,
  ["response.output_text.done"] = function(acc, event) set_whole(acc, part_of(acc, event), "text", event.text) end,
  ["response.refusal.delta"] = function(acc, event) add_piece(acc, part_of(acc, event), "refusal", event.delta) end,
  ["response.refusal.done"] = function(acc, event) set_whole(acc, part_of(acc, event), "refusal", event.refusal) end,
  ["response.function_call_arguments.delta"] = function(acc, event)
    add_piece(acc, item_of(acc, event), "arguments", event.delta)
  end,
  ["response.function_call_arguments.done"] = function(acc, event)
    set_whole(acc, item_of(acc, event), "arguments", event.arguments)
  end,
  ["response.content_part.done"] = function(acc, event)
    local item, at = item_of(acc, event), position(event.content_index)
    if item ~= nil and at ~= nil and is_object(event.part) and is_array(item.content) then
      local old = item.content[at]
      if type(old) == "table" then acc.pieces[old] = nil end
      put(item.content, at, event.part)
    end
  end,
  ["response.output_item.done"] = function(acc, event)
    local old = item_of(acc, event)
    if old ~= nil then acc.pieces[old] = nil end
    put_item(acc, event)
  end,
}

-- The accumulator of response streams (see openai.stream).
responses.stream = { name = "openai.ResponseStream" }

function responses.stream.new()
  -- snapshot: the response as the events built it; terminal: the type of
  -- the event that ended it and the response that event carried.
  return { snapshot = nil, pieces = setmetatable({}, { __mode = "k" }), terminal = nil, response = nil }
end

function responses.stream.add(acc, event)
  if not is_object(event) then return end
  local kind, response = event.type, event.response
  if TERMINAL[kind] and is_object(response) then
    acc.terminal, acc.response = kind, response
    acc.snapshot = copy(response)
  elseif is_object(response) and (kind == "response.created" or kind == "response.in_progress"
      or kind == "response.queued") then
    acc.snapshot = copy(response)
  elseif FOLD[kind] then
    FOLD[kind](acc, event)
  end
end

-- The snapshot with the pieces joined: what had arrived.
local function assembled(acc)
  for owner, by_field in pairs(acc.pieces) do
    for field, list in pairs(by_field) do owner[field] = table.concat(list) end
  end
  acc.pieces = setmetatable({}, { __mode = "k" })
  return acc.snapshot
end

-- The Response of `response.completed`; otherwise nil and an APIError whose
-- `response` is the Response of `response.failed` / `response.incomplete`,
-- or the one assembled from the events when the stream ended without
-- either (nil if not even `response.created` came).
function responses.stream.final(acc, stream)
  if acc.terminal == "response.completed" then return acc.response end
  local message, response
  if acc.terminal == "response.failed" then
    local detail = is_object(acc.response.error) and acc.response.error or {}
    local said = type(detail.message) == "string" and detail.message or "no error given"
    message, response = "the response failed: " .. said, acc.response
  elseif acc.terminal == "response.incomplete" then
    local details = acc.response.incomplete_details
    local reason = is_object(details) and type(details.reason) == "string" and details.reason or "no reason given"
    message, response = "the response is incomplete: " .. reason, acc.response
  else
    message, response = "the stream ended without a response.completed event", assembled(acc)
  end
  local headers = stream.headers
  return nil, errors.new {
    name = "APIError",
    message = message,
    response = response,
    request_id = headers and headers["x-request-id"],
    headers = headers,
  }
end

-- The text of a Response, as the official SDKs' `output_text`: every
-- `output_text` part of every `message` output item, joined. (Tables built
-- in Lua count as arrays too.)
function responses.output_text(response)
  local parts = {}
  if type(response.output) == "table" then
    for _, item in ipairs(response.output) do
      if type(item) == "table" and item.type == "message" and type(item.content) == "table" then
        for _, part in ipairs(item.content) do
          if type(part) == "table" and part.type == "output_text" and type(part.text) == "string" then
            parts[#parts + 1] = part.text
          end
        end
      end
    end
  end
  return table.concat(parts)
end

-- Method shapes: see openai.resources. retrieve with `stream = true` in its
-- query resumes a background response's events (`starting_after`).
responses.tree = {
  create = { method = "POST", path = "/responses", args = { "body" }, stream = responses.stream,
    doc = "Creates a response; with `stream = true` in params, a stream of its events." },
  retrieve = { method = "GET", path = "/responses/{}", args = { "response_id", "query" }, stream = responses.stream,
    query = "{ include: string[]?, stream: boolean?, starting_after: integer?, include_obfuscation: boolean? }",
    doc = "A stored response; with `stream = true` in the query, its events again (after `starting_after`)." },
  delete = { method = "DELETE", path = "/responses/{}", args = { "response_id" }, empty = true,
    doc = "Deletes a stored response; `true` when the API answers with no body." },
  cancel = { method = "POST", path = "/responses/{}/cancel", args = { "response_id" },
    doc = "Cancels a background response; returns it." },
  compact = { method = "POST", path = "/responses/compact", args = { "body" },
    doc = "Compacts a conversation's items into fewer." },
  input_items = {
    list = { method = "GET", path = "/responses/{}/input_items", args = { "response_id", "query" }, page = true,
      query = "{ after: string?, limit: integer?, order: \"asc\"|\"desc\"?, include: string[]? }",
      doc = "A page of the items a response was given." },
  },
  input_tokens = {
    count = { method = "POST", path = "/responses/input_tokens", args = { "body" },
      doc = "How many input tokens a request would use." },
  },
}

return responses
