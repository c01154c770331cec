-- What a contract case's call gives back, as one JSON-able table, so the
-- same checks run on it whichever transport and process made the call.
local outcome = {}

local ERROR_FIELDS = { "name", "message", "status", "code", "type", "param", "request_id", "cause" }

-- An error object's fields (or, for a raised string, that string).
function outcome.error(err)
  if type(err) ~= "table" then return { raised = tostring(err) } end
  local out = {}
  for _, key in ipairs(ERROR_FIELDS) do
    if err[key] ~= nil then out[key] = err[key] end
  end
  return out
end

-- A call's results: { value = ..., request_id = ... } or { error = ... }.
function outcome.of(value, err)
  if value == nil then return { error = outcome.error(err) } end
  return { value = value, request_id = value._request_id }
end

-- The message of an error raised by `fn(...)`, without its position.
function outcome.raised(fn, ...)
  local ok, message = pcall(fn, ...)
  if ok then return "no error" end
  return (tostring(message):gsub("^[^\n]-:%d+: ", ""))
end

-- Reads a stream to its end: the chunks' contents, in order, and how it
-- ended (the error's fields, or "end").
function outcome.drain(stream)
  local contents, ended = {}, "end"
  while true do
    local chunk, err = stream:next()
    if chunk == nil then
      if err ~= nil then ended = outcome.error(err) end
      break
    end
    local choice = type(chunk.choices) == "table" and chunk.choices[1]
    contents[#contents + 1] = choice and choice.delta and choice.delta.content or "<no content>"
  end
  return { contents = contents, ended = ended }
end

return outcome
