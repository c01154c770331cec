-- Input items of the Responses and Conversations APIs: checking what a
-- request sends, and the stored form the list endpoints give back.
--
-- A request's input is a string (one user message) or a list of items.  A
-- message item has a role and content (a string, or a list of parts with
-- `text`); `type` may be left out for messages.  Other item types (tool
-- calls, their outputs...) are kept as sent.

local json = require("mock.json")
local wire = require("mock.wire")
local Store = require("mock.store")

local M = {}

local null = json.null

local function is_message(item)
  return item.type == nil or item.type == "message"
end

-- nil when `input` (the request member `param`) is well formed, else the 400
-- body.  At most `max` items when given.
function M.check(input, param, max)
  if type(input) == "string" then return nil end
  if not json.is_array(input) then return wire.invalid_type(param, "a string or an array of input items", input) end
  if max and #input > max then
    return wire.error_body(string.format("Invalid '%s': array too long. Expected an array with maximum length %d, " ..
      "but got an array with length %d instead.", param, max, #input), param, "array_above_max_length")
  end
  for i, item in ipairs(input) do
    local at = string.format("%s[%d]", param, i - 1)
    if not json.is_object(item) then return wire.invalid_type(at, "an object", item) end
    if is_message(item) then
      if type(item.role) ~= "string" then return wire.missing(at .. ".role") end
      local c = item.content
      if type(c) ~= "string" and not json.is_array(c) then
        return wire.invalid_type(at .. ".content", "a string or an array", c == nil and null or c)
      end
    elseif type(item.type) ~= "string" then
      return wire.invalid_type(at .. ".type", "a string", item.type)
    end
  end
  return nil
end

-- The text of a message item (content string or its text parts).
M.text = Store.message_text

-- The text the mock answers: a string input, or the last message item's.
function M.last_text(input)
  if type(input) == "string" then return input end
  for i = #input, 1, -1 do
    if is_message(input[i]) then return M.text(input[i]) end
  end
  return ""
end

-- Word count of instructions plus every message of the input: the mock's
-- token count (as chat completions count prompt words).
function M.count_tokens(input, instructions)
  local n = type(instructions) == "string" and wire.count_words(instructions) or 0
  if type(input) == "string" then return n + wire.count_words(input) end
  for _, item in ipairs(input or {}) do
    if is_message(item) then n = n + wire.count_words(M.text(item)) end
  end
  return n
end

-- A text content part: what the assistant says is output_text, the rest
-- input_text.
function M.text_part(role, text)
  if role == "assistant" then
    return json.obj("type", "output_text", "text", text, "annotations", json.array(), "logprobs", json.array())
  end
  return json.obj("type", "input_text", "text", text)
end

-- One item in its stored form: an id (kept when given, else new_id()), and
-- for messages the full message shape with content as a list of parts.
local function stored(item, new_id)
  local id = type(item.id) == "string" and item.id or new_id()
  if not is_message(item) then
    local copy = json.copy(item)
    json.set(copy, "id", id)
    return copy
  end
  local content = item.content
  if type(content) == "string" then
    content = json.array({ M.text_part(item.role, content) })
  else
    content = json.copy(content)
  end
  return json.obj("id", id, "type", "message", "status", "completed", "role", item.role, "content", content)
end

-- A checked input (see M.check) as a list of stored items.
function M.store(input, new_id)
  if type(input) == "string" then input = { json.obj("role", "user", "content", input) } end
  local out = {}
  for i, item in ipairs(input or {}) do out[i] = stored(item, new_id) end
  return out
end

-- A counter of ids `<prefix><n>`: calling the result gives the next one.
function M.counter(prefix)
  local n = 0
  return function()
    n = n + 1
    return prefix .. n
  end
end

return M
