-- Streams of server-sent events whose data is JSON, read one event at a
-- time from a transport's reader (pull-based: nothing is read from the
-- network until the next event is asked for). The rules every API stream
-- shares live here: [DONE], error events, malformed data. What a
-- resource's events add up to (a chat completion from its chunks) is that
-- resource's accumulator, given to Stream.new.
--
-- An accumulator: { name = "openai.XStream", new = function() -> acc,
-- add = function(acc, event) (may normalise the event in place),
-- final = function(acc, stream) -> the assembled object, or nil and an
-- error object (the events did not add up to one) }.
local core = require("openai.core")
local errors = require("openai.errors")
local object = require("openai.object")

local Stream = {}

-- A stream's reading state, kept out of the stream table so that only the
-- response's status, headers and _request_id show there.
local states = setmetatable({}, { __mode = "k" })

-- One metatable per accumulator: its name is the stream's __name.
local metatables = setmetatable({}, { __mode = "k" })

-- How many events after [DONE] are read (and dropped) so the connection
-- can be reused; a server that keeps talking, or stalls, is cut off.
local MAX_DRAIN = 16

-- Python's truthiness, as openai-python's `data.get("error")`: null, false,
-- 0, "" and an empty object or array are not errors.
local function truthy(value)
  if value == nil or value == core.null or value == false or value == 0 or value == "" then return false end
  return type(value) ~= "table" or next(value) ~= nil
end

local is_object = require("openai.shape").is_object

local function metatable_for(accumulator)
  local mt = metatables[accumulator]
  if mt == nil then
    mt = {
      __name = accumulator.name,
      __index = Stream,
      __call = Stream.__call,
      __close = Stream.close,
      __tostring = Stream.__tostring,
    }
    metatables[accumulator] = mt
  end
  return mt
end

-- Wraps a transport's reader of a response that answered with a 2xx
-- status. max_values: the cap on JSON values of one event (nil: the
-- default).
function Stream.new(raw, status, headers, max_values, accumulator)
  local stream = setmetatable({ status = status, headers = headers, _request_id = headers["x-request-id"] },
    metatable_for(accumulator))
  states[stream] = {
    raw = raw,
    max_values = max_values,
    finished = false,
    error = nil,
    accumulator = accumulator,
    acc = accumulator.new(),
  }
  return stream
end

local function finish(state, err)
  state.finished = true
  state.error = err
  state.raw:close()
  return nil, err
end

-- Reads the next event: returns it, or nil at the end, or nil and an
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
      local ok, problem = pcall(state.accumulator.add, state.acc, payload)
      if not ok then
        return finish(state, errors.validation(self.status, self.headers, data,
          "cannot use a stream chunk: " .. tostring(problem)))
      end
      return payload
    end
    -- a JSON scalar is not an event: skip it
  end
end

-- `for event in stream do`: errors are raised as the error object. A
-- stream the caller closed (inside the loop, say) just ends the loop, as
-- an abort does in the official SDKs' iteration; next() still tells.
function Stream:__call()
  local event, err = self:next()
  if err ~= nil and err.name ~= "APIUserAbortError" then error(err, 0) end
  return event
end

-- `for event in stream:iter() do`: the same, and a `break` closes the
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

function Stream:__tostring()
  local state = states[self]
  return ("%s (%s)"):format(state.accumulator.name, state.finished and "finished" or "open")
end

-- Reads the rest of the stream and returns the object its events add up
-- to, or nil and an error object.
function Stream:final()
  local state = states[self]
  while not state.finished do
    local event, err = self:next()
    if err ~= nil then return nil, err end
    if event == nil then break end
  end
  if state.error ~= nil then return nil, state.error end
  local result, err = state.accumulator.final(state.acc, self)
  if result == nil then return nil, err end
  return object.attach(result, self._request_id)
end

return Stream
