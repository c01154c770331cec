-- Error objects: what every runtime failure returns as the second value of
-- `nil, err`. One metatable, openai.Error; the `name` field says the kind.
local core = require("openai.core")

local errors = {}

local STATUS_NAMES = {
  [400] = "BadRequestError",
  [401] = "AuthenticationError",
  [403] = "PermissionDeniedError",
  [404] = "NotFoundError",
  [409] = "ConflictError",
  [422] = "UnprocessableEntityError",
  [429] = "RateLimitError",
}

-- Every kind is an APIError; a timeout is also a connection error.
local PARENT = {
  APIConnectionTimeoutError = "APIConnectionError",
  APIConnectionError = "APIError",
  APIResponseValidationError = "APIError",
  APIUserAbortError = "APIError",
  InternalServerError = "APIError",
}
for _, name in pairs(STATUS_NAMES) do PARENT[name] = "APIError" end

local Error = { __name = "openai.Error" }
Error.__index = Error
errors.Error = Error

local function one_line(text)
  return (tostring(text):gsub("[\r\n]+", " "))
end

function Error.__tostring(err)
  local text = err.name .. ": " .. one_line(err.message)
  if err.cause ~= nil then text = text .. " (" .. one_line(err.cause) .. ")" end
  if err.request_id ~= nil then text = text .. " [request " .. one_line(err.request_id) .. "]" end
  return text
end

-- err:is("APIConnectionError") is true for that kind and every kind below it.
function Error:is(name)
  local kind = self.name
  while kind ~= nil do
    if kind == name then return true end
    kind = PARENT[kind]
  end
  return false
end

function errors.new(fields)
  return setmetatable(fields, Error)
end

local absent = require("openai.shape").absent

local function json_text(value)
  local ok, text = pcall(core.json_encode, value)
  return ok and text or tostring(value)
end

-- The name an HTTP status maps to, as in the official SDKs.
function errors.name_for_status(status)
  return STATUS_NAMES[status] or (status >= 500 and "InternalServerError") or "APIError"
end

-- What an error object says, as in the official SDKs: its message when it
-- is a non-empty string, else that message or the whole object as JSON.
-- Returns the text and a function reading the other fields (nil for null).
local function describe(detail)
  local message = type(detail) == "table" and rawget(detail, "message") or nil
  local text
  if type(message) == "string" and message ~= "" then
    text = message
  elseif not absent(message) and message ~= "" and message ~= false then
    text = json_text(message)
  else
    text = json_text(detail)
  end
  local function field(name)
    local value = type(detail) == "table" and rawget(detail, name) or nil
    if absent(value) then return nil end
    return value
  end
  return text, field
end

-- The error member of a JSON body, or the body itself when it has none.
local function detail_of(body)
  local detail = rawget(body, "error")
  if absent(detail) then return body end
  return detail
end

-- An error carrying a response's error object (`detail`) and its fields.
local function api_error(name, status, message, detail, field, headers, body)
  return errors.new {
    name = name,
    status = status,
    message = message,
    type = field("type"),
    code = field("code"),
    param = field("param"),
    error = detail,
    request_id = headers["x-request-id"],
    headers = headers,
    body = body,
  }
end

local function no_field() return nil end

-- An error from a non-2xx response. `body` is the decoded JSON body when it
-- parsed, else the raw text. The message follows the official SDKs:
-- "<status> <error.message>", or "<status> status code (no body)".
function errors.from_response(status, headers, body)
  local detail, text, field = nil, nil, no_field
  if type(body) == "table" then
    detail = detail_of(body)
    text, field = describe(detail)
  elseif type(body) == "string" then
    if body ~= "" then text = body end
  elseif body ~= nil then
    text = json_text(body) -- a JSON scalar
  end
  local message = text and (status .. " " .. text) or (status .. " status code (no body)")
  return api_error(errors.name_for_status(status), status, message, detail, field, headers, body)
end

-- An error sent inside a stream (`event: error`, or a payload with an
-- `error` member): an APIError without status, its message unprefixed.
function errors.from_event(payload, headers)
  local detail = type(payload) == "table" and detail_of(payload) or payload
  local text, field = describe(detail)
  return api_error("APIError", nil, text, detail, field, headers, payload)
end

-- A cause is the C core's message (libcurl's, with any URL userinfo
-- already replaced by "***").
local function failure(name, message)
  return function(cause)
    return errors.new { name = name, message = message, cause = cause }
  end
end

errors.connection = failure("APIConnectionError", "Connection error.")
errors.timeout = failure("APIConnectionTimeoutError", "Request timed out.")
-- The caller (or its garbage collector) closed the stream or the client.
errors.aborted = failure("APIUserAbortError", "Request was aborted.")

-- The error for a failure kind of openai.core (conn:request, conn:stream,
-- stream:read): "timeout", "closed", or a connection problem ("connection",
-- "too_large", "config", "fd_limit", ...).
local FAILURES = { timeout = errors.timeout, closed = errors.aborted }

function errors.failure(kind, cause)
  return (FAILURES[kind] or errors.connection)(cause)
end

-- Why a JSON text from the server could not be used: it holds more values
-- than the client's max_response_values, or it is not JSON (`invalid`
-- says so for that text).
function errors.undecodable(what, invalid, decode_error)
  if decode_error:find("^JSON has more than %d+ values") then
    return what .. " exceeds max_response_values: " .. decode_error
  end
  return invalid .. ": " .. decode_error
end

-- A 2xx response whose body is not the JSON that was expected.
function errors.validation(status, headers, body, reason)
  return errors.new {
    name = "APIResponseValidationError",
    status = status,
    message = status .. " " .. reason,
    request_id = headers and headers["x-request-id"],
    headers = headers,
    body = body,
  }
end

return errors
