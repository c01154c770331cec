-- Streams of chat.completion.chunk objects, read one server-sent event at
-- a time from openai.core's Stream (pull-based: nothing is read from the
-- network until the next chunk is asked for).
local core = require("openai.core")
local compat = require("openai.compat")
local errors = require("openai.errors")
local object = require("openai.object")

local Stream = { __name = "openai.ChatCompletionStream" }
Stream.__index = Stream

-- A stream's reading state, kept out of the stream table so that only the
-- response's status, headers and _request_id show there.
local states = setmetatable({}, { __mode = "k" })

-- How many events after [DONE] are read (and dropped) so the connection
-- can be reused; a server that keeps talking, or stalls, is cut off.
local MAX_DRAIN = 16

-- Server JSON may hold any value anywhere: every read below checks the
-- type before using a value, and skips what it cannot use.
local function is_array(value)
  return type(value) == "table" and getmetatable(value) == core.array_mt
end

local function is_object(value)
  return type(value) == "table" and getmetatable(value) ~= core.array_mt
end

local function absent(value)
  return value == nil or value == core.null
end

-- Python's truthiness, as openai-python's `data.get("error")`: null, false,
-- 0, "" and an empty object or array are not errors.
local function truthy(value)
  if absent(value) or value == false or value == 0 or value == "" then return false end
  return type(value) ~= "table" or next(value) ~= nil
end

-- A choice or tool call index: an integral number in 0 .. 2^53 - 1 (so
-- index + 1 never overflows), else nil.
local MAX_INDEX = 2 ^ 53 - 1

local function index_of(value)
  local index = compat.tointeger(value)
  if index == nil or index < 0 or index > MAX_INDEX then return nil end
  return index
end

-- Wraps a core stream that answered with a 2xx status.
-- max_values: the cap on JSON values of one event (nil: the default).
function Stream.new(raw, status, headers, max_values)
  local stream = setmetatable({ status = status, headers = headers, _request_id = headers["x-request-id"] }, Stream)
  states[stream] = {
    raw = raw,
    max_values = max_values,
    finished = false,
    error = nil,
    choices = {},    -- accumulated per choice index, for final()
    snapshot = nil,  -- the top-level members for final()
  }
  return stream
end

local function finish(state, err)
  state.finished = true
  state.error = err
  state.raw:close()
  return nil, err
end

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
  if snap == nil then
    snap = { object = "chat.completion" }
    state.snapshot = snap
  end
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

-- Reads the next chunk: returns it, or nil at the end, or nil and an
-- error object. Errors end the stream. Never raises for what a server sends.
function Stream:next()
  local state = states[self]
  if state.finished then return nil, state.error end
  while true do
    local event, data, message = state.raw:read()
    if event == nil and data == nil then
      return finish(state, nil) -- the server ended the stream
    end
    if event == nil and message ~= nil then -- read() failed: data is the kind
      return finish(state, errors.failure(data, message))
    end
    -- As openai-python's data.startswith("[DONE]"): whatever follows counts for nothing.
    if data:sub(1, 6) == "[DONE]" then
      -- Read what has already arrived (usually the end of the response, so
      -- the connection can be reused), never waiting for more.
      for _ = 1, MAX_DRAIN do
        local _, more_data, failure = state.raw:read(false)
        if more_data == nil or more_data == "pending" or failure ~= nil then break end
      end
      return finish(state, nil)
    end
    local payload, decode_error = core.json_decode(data, nil, state.max_values)
    if payload == nil then
      return finish(state, errors.validation(self.status, self.headers, data,
        errors.undecodable("server-sent event", "malformed server-sent event JSON", decode_error)))
    end
    if event == "error" or (is_object(payload) and truthy(rawget(payload, "error"))) then
      return finish(state, errors.from_event(payload, self.headers))
    end
    if type(payload) == "table" then
      -- The last line of defence: a bug in the accumulation ends this
      -- stream with an error object instead of raising.
      local ok, problem = pcall(accumulate, state, payload)
      if not ok then
        return finish(state, errors.validation(self.status, self.headers, data,
          "cannot use a stream chunk: " .. tostring(problem)))
      end
      return payload
    end
    -- a JSON scalar is not a chunk: skip it
  end
end

-- `for chunk in stream do`: errors are raised as the error object. A
-- stream the caller closed (inside the loop, say) just ends the loop, as
-- an abort does in the official SDKs' iteration; next() still tells.
function Stream:__call()
  local chunk, err = self:next()
  if err ~= nil and err.name ~= "APIUserAbortError" then error(err, 0) end
  return chunk
end

-- `for chunk in stream:iter() do`: the same, and a `break` closes the
-- stream (the fourth value is the loop's closing value).
function Stream:iter()
  return Stream.__call, self, nil, self
end

-- Aborts the transfer; idempotent. A stream cut short reads as aborted
-- from then on, never as a clean end.
function Stream:close()
  local state = states[self]
  if not state.finished then finish(state, errors.aborted("the stream was closed")) end
end
Stream.__close = Stream.close

function Stream:__tostring()
  return ("openai.ChatCompletionStream (%s)"):format(states[self].finished and "finished" or "open")
end

-- The integer keys of a table, in order: choices and tool calls go by
-- their index, whatever the order and gaps the server sent them in.
local function sorted_keys(map)
  local keys = {}
  for key in pairs(map) do keys[#keys + 1] = key end
  table.sort(keys)
  return keys
end

-- Reads the rest of the stream and returns the whole ChatCompletion
-- assembled from its chunks, or nil and an error object.
function Stream:final()
  local state = states[self]
  while not state.finished do
    local chunk, err = self:next()
    if err ~= nil then return nil, err end
    if chunk == nil then break end
  end
  if state.error ~= nil then return nil, state.error end
  local snap = state.snapshot or { object = "chat.completion" }
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
  return object.attach(result, self._request_id)
end

return Stream
