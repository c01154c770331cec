-- Streams of chat.completion.chunk objects, read one server-sent event at
-- a time from openai.core's Stream (pull-based: nothing is read from the
-- network until the next chunk is asked for).
local core = require("openai.core")
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

local function absent(value)
  return value == nil or value == core.null
end

-- Wraps a core stream that answered with a 2xx status.
function Stream.new(raw, status, headers)
  local stream = setmetatable({ status = status, headers = headers, _request_id = headers["x-request-id"] }, Stream)
  states[stream] = {
    raw = raw,
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

-- Folds one chunk into the snapshot that final() returns.
local function accumulate(state, chunk)
  local snap = state.snapshot
  if snap == nil then
    snap = { object = "chat.completion" }
    state.snapshot = snap
  end
  for _, key in ipairs { "id", "created", "model", "system_fingerprint", "service_tier" } do
    if chunk[key] ~= nil then snap[key] = chunk[key] end
  end
  if not absent(chunk.usage) then snap.usage = chunk.usage end
  if type(chunk.choices) ~= "table" then return end
  for _, delta_choice in ipairs(chunk.choices) do
    local index = math.tointeger(delta_choice.index) or 0
    local acc = state.choices[index]
    if acc == nil then
      acc = { index = index, content = {}, refusal = {}, tool_calls = {}, finish_reason = core.null,
              logprobs_content = nil, logprobs_refusal = nil }
      state.choices[index] = acc
    end
    local delta = delta_choice.delta
    if type(delta) == "table" then
      if type(delta.role) == "string" then acc.role = delta.role end
      append(acc.content, delta.content)
      append(acc.refusal, delta.refusal)
      if type(delta.tool_calls) == "table" then
        for _, call_delta in ipairs(delta.tool_calls) do
          local at = math.tointeger(call_delta.index) or #acc.tool_calls
          local call = acc.tool_calls[at + 1]
          if call == nil then
            call = { arguments = {} }
            acc.tool_calls[at + 1] = call
          end
          if type(call_delta.id) == "string" then call.id = call_delta.id end
          if type(call_delta.type) == "string" then call.type = call_delta.type end
          local fn = call_delta["function"]
          if type(fn) == "table" then
            if type(fn.name) == "string" then call.name = (call.name or "") .. fn.name end
            append(call.arguments, fn.arguments)
          end
        end
      end
    end
    if not absent(delta_choice.finish_reason) then acc.finish_reason = delta_choice.finish_reason end
    local logprobs = delta_choice.logprobs
    if type(logprobs) == "table" then
      for _, part in ipairs { "content", "refusal" } do
        local items = logprobs[part]
        if type(items) == "table" then
          local field = "logprobs_" .. part
          acc[field] = acc[field] or setmetatable({}, core.array_mt)
          for _, item in ipairs(items) do table.insert(acc[field], item) end
        end
      end
    end
  end
end

-- Reads the next chunk: returns it, or nil at the end, or nil and an
-- error object. Errors end the stream.
function Stream:next()
  local state = states[self]
  if state.finished then return nil, state.error end
  while true do
    local event, data, message = state.raw:read()
    if event == nil and data == nil then
      return finish(state, nil) -- the server ended the stream
    end
    if event == nil and message ~= nil then -- read() failed: data is the kind
      local err = data == "timeout" and errors.timeout(message) or errors.connection(message)
      return finish(state, err)
    end
    if data == "[DONE]" then
      -- Read what has already arrived (usually the end of the response, so
      -- the connection can be reused), never waiting for more.
      for _ = 1, MAX_DRAIN do
        local _, more_data, failure = state.raw:read(false)
        if more_data == nil or more_data == "pending" or failure ~= nil then break end
      end
      return finish(state, nil)
    end
    local payload, decode_error = core.json_decode(data)
    if payload == nil then
      return finish(state, errors.validation(self.status, self.headers, data,
        "malformed server-sent event JSON: " .. decode_error))
    end
    if event == "error" or (type(payload) == "table" and not absent(rawget(payload, "error"))) then
      return finish(state, errors.from_event(payload, self.headers))
    end
    if type(payload) == "table" then
      if type(payload.choices) == "table" then
        for _, choice in ipairs(payload.choices) do
          if type(choice) == "table" and choice.finish_reason == nil then choice.finish_reason = core.null end
        end
      end
      accumulate(state, payload)
      return payload
    end
    -- a JSON scalar is not a chunk: skip it
  end
end

-- `for chunk in stream do`: errors are raised as the error object.
function Stream:__call()
  local chunk, err = self:next()
  if err ~= nil then error(err, 0) end
  return chunk
end

-- `for chunk in stream:iter() do`: the same, and a `break` closes the
-- stream (the fourth value is the loop's closing value).
function Stream:iter()
  return Stream.__call, self, nil, self
end

-- Aborts the transfer; idempotent.
function Stream:close()
  local state = states[self]
  if not state.finished then
    state.finished = true
    state.raw:close()
  end
end
Stream.__close = Stream.close

function Stream:__tostring()
  return ("openai.ChatCompletionStream (%s)"):format(states[self].finished and "finished" or "open")
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
  local indexes = {}
  for index in pairs(state.choices) do indexes[#indexes + 1] = index end
  table.sort(indexes)
  local choices = setmetatable({}, core.array_mt)
  for _, index in ipairs(indexes) do
    local acc = state.choices[index]
    local message = {
      role = acc.role or "assistant",
      content = #acc.content > 0 and table.concat(acc.content) or core.null,
      refusal = #acc.refusal > 0 and table.concat(acc.refusal) or core.null,
    }
    if #acc.tool_calls > 0 then
      local calls = setmetatable({}, core.array_mt)
      for i, call in ipairs(acc.tool_calls) do
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
