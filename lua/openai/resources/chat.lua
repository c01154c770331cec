-- chat: the chat completions resource declared as data (see
-- openai.resources), and what its streams add up to: the chunks of a
-- streamed completion folded into the ChatCompletion that final() returns.
local core = require("openai.core")
local compat = require("openai.compat")

local chat = {}

-- Every read below checks the type before using a value, and skips what
-- it cannot use.
local shape = require("openai.shape")
local is_array, is_object, absent = shape.is_array, shape.is_object, shape.absent

-- A choice or tool call index: an integral number in 0 .. 2^53 - 1 (so
-- index + 1 never overflows), else nil.
local MAX_INDEX = 2 ^ 53 - 1

local function index_of(value)
  local index = compat.tointeger(value)
  if index == nil or index < 0 or index > MAX_INDEX then return nil end
  return index
end

-- ChatCompletionChunk events, accumulated per choice index.
local function append(list, piece)
  if type(piece) == "string" then list[#list + 1] = piece end
end

-- The highest key of a table of integer keys, or -1.
local function highest(map)
  local top = -1
  for key in pairs(map) do
    if key > top then top = key end
  end
  return top
end

local function accumulate_tool_calls(acc, deltas)
  for _, call_delta in ipairs(deltas) do
    if is_object(call_delta) then
      -- No index: a call of its own after the others (as before).
      local at = absent(call_delta.index) and highest(acc.tool_calls) + 1 or index_of(call_delta.index)
      if at ~= nil then
        local call = acc.tool_calls[at]
        if call == nil then
          call = { arguments = {} }
          acc.tool_calls[at] = call
        end
        if type(call_delta.id) == "string" then call.id = call_delta.id end
        if type(call_delta.type) == "string" then call.type = call_delta.type end
        local fn = call_delta["function"]
        if is_object(fn) then
          if type(fn.name) == "string" then call.name = (call.name or "") .. fn.name end
          append(call.arguments, fn.arguments)
        end
      end
    end
  end
end

local function accumulate_logprobs(acc, logprobs)
  if not is_object(logprobs) then return end
  for _, part in ipairs { "content", "refusal" } do
    local items = logprobs[part]
    if is_array(items) then
      local field = "logprobs_" .. part
      acc[field] = acc[field] or setmetatable({}, core.array_mt)
      for _, item in ipairs(items) do
        if is_object(item) then table.insert(acc[field], item) end
      end
    end
  end
end

local function accumulate_choice(state, delta_choice)
  local index = 0
  if not absent(delta_choice.index) then index = index_of(delta_choice.index) end
  if index == nil then return end
  local acc = state.choices[index]
  if acc == nil then
    acc = { index = index, content = {}, refusal = {}, tool_calls = {}, finish_reason = core.null,
            logprobs_content = nil, logprobs_refusal = nil }
    state.choices[index] = acc
  end
  local delta = delta_choice.delta
  if is_object(delta) then
    if type(delta.role) == "string" then acc.role = delta.role end
    append(acc.content, delta.content)
    append(acc.refusal, delta.refusal)
    if is_array(delta.tool_calls) then accumulate_tool_calls(acc, delta.tool_calls) end
  end
  if type(delta_choice.finish_reason) == "string" then acc.finish_reason = delta_choice.finish_reason end
  accumulate_logprobs(acc, delta_choice.logprobs)
end

-- Normalises one chunk (a missing finish_reason becomes null) and folds it
-- into the snapshot that final() returns.
local function accumulate(state, chunk)
  local snap = state.snapshot
  if not is_object(chunk) then return end
  for _, key in ipairs { "id", "created", "model", "system_fingerprint", "service_tier" } do
    if chunk[key] ~= nil then snap[key] = chunk[key] end
  end
  if is_object(chunk.usage) then snap.usage = chunk.usage end
  if not is_array(chunk.choices) then return end
  for _, choice in ipairs(chunk.choices) do
    if is_object(choice) then
      if choice.finish_reason == nil then choice.finish_reason = core.null end
      accumulate_choice(state, choice)
    end
  end
end

-- The integer keys of a table, in order: choices and tool calls go by
-- their index, whatever the order and gaps the server sent them in.
local function sorted_keys(map)
  local keys = {}
  for key in pairs(map) do keys[#keys + 1] = key end
  table.sort(keys)
  return keys
end

-- The accumulator of chat completion streams (see openai.stream).
chat.stream = { name = "openai.ChatCompletionStream" }

function chat.stream.new()
  return { choices = {}, snapshot = { object = "chat.completion" } }
end

chat.stream.add = accumulate

-- The whole ChatCompletion assembled from the chunks.
function chat.stream.final(state)
  local snap = state.snapshot
  local result = {}
  for key, value in pairs(snap) do result[key] = value end
  local choices = setmetatable({}, core.array_mt)
  for _, index in ipairs(sorted_keys(state.choices)) do
    local acc = state.choices[index]
    local message = {
      role = acc.role or "assistant",
      content = #acc.content > 0 and table.concat(acc.content) or core.null,
      refusal = #acc.refusal > 0 and table.concat(acc.refusal) or core.null,
    }
    if next(acc.tool_calls) ~= nil then
      local calls = setmetatable({}, core.array_mt)
      for i, at in ipairs(sorted_keys(acc.tool_calls)) do
        local call = acc.tool_calls[at]
        calls[i] = {
          id = call.id, type = call.type or "function",
          ["function"] = { name = call.name or "", arguments = table.concat(call.arguments) },
        }
      end
      message.tool_calls = calls
    end
    local logprobs = core.null
    if acc.logprobs_content or acc.logprobs_refusal then
      logprobs = { content = acc.logprobs_content or core.null, refusal = acc.logprobs_refusal or core.null }
    end
    choices[#choices + 1] = { index = index, message = message, finish_reason = acc.finish_reason, logprobs = logprobs }
  end
  result.choices = choices
  if result.usage == nil then result.usage = core.null end
  return result
end


-- Method shapes: see openai.resources. `stream`: the accumulator of what a
-- call with `stream = true` returns.
chat.tree = {
  completions = {
    create = { method = "POST", path = "/chat/completions", args = { "body" }, stream = chat.stream,
      doc = "Creates a chat completion; with `stream = true` in params, a stream of its chunks." },
    retrieve = { method = "GET", path = "/chat/completions/{}", args = { "completion_id" },
      doc = "A chat completion stored with `store = true`." },
    update = { method = "POST", path = "/chat/completions/{}", args = { "completion_id", "body" },
      params = "{ metadata: table<string, string>|lightuserdata }",
      doc = "Sets a stored completion's metadata (`openai.null` clears it)." },
    list = { method = "GET", path = "/chat/completions", args = { "query" }, page = true,
      query = "{ after: string?, limit: integer?, order: \"asc\"|\"desc\"?, model: string?, metadata: table<string, string>? }",
      doc = "A page of stored completions." },
    delete = { method = "DELETE", path = "/chat/completions/{}", args = { "completion_id" },
      doc = "Deletes a stored completion: `{ object = \"chat.completion.deleted\", id, deleted = true }`." },
    messages = {
      list = { method = "GET", path = "/chat/completions/{}/messages", args = { "completion_id", "query" }, page = true,
        query = "{ after: string?, limit: integer?, order: \"asc\"|\"desc\"? }",
        doc = "A page of a stored completion's messages." },
    },
  },
}

return chat
