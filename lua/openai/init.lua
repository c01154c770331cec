-- require("openai"): the facade. Builds clients, and is itself a client
-- built lazily from the environment on its first call.
local core = require("openai.core")
local client_core = require("openai.client")
local compat = require("openai.compat")

if compat.int64_make then core.int64_functions(compat.int64_make, compat.int64_cdata_digits) end
local errors = require("openai.errors")
local resources = require("openai.resources")
local tasks = require("openai.tasks")

local openai = {
  VERSION = client_core.VERSION,
  null = core.null,
  array_mt = core.array_mt,
  Error = errors.Error,
  json = {
    encode = core.json_encode,
    decode = core.json_decode,
  },
}

-- Many calls at once from one thread (see openai.tasks): spawn(fn, ...)
-- starts a task whose calls wait by yielding; poll(timeout) drives them;
-- run(fn, ...) spawns fn and polls until it ends. pollfd(), events() and
-- timeout() are cqueues' pollable protocol, for external event loops.
openai.spawn = tasks.spawn
openai.poll = tasks.poll
openai.run = tasks.run
openai.pollfd = function() return tasks.pollfd() end
openai.timeout = function() return tasks.timeout() end
openai.events = function() return "r" end

-- The text of a Response, as the official SDKs' `output_text`: every
-- `output_text` part of every `message` output item, joined (a function,
-- so that pairs(response) stays exactly the JSON members).
local output_text = require("openai.resources.responses").output_text
function openai.output_text(response)
  if type(response) ~= "table" then
    error(("bad argument #1 to 'output_text' (Response table expected, got %s)"):format(type(response)), 2)
  end
  return output_text(response)
end

-- An empty (or given) table that encodes as a JSON array.
function openai.array(tbl)
  if tbl ~= nil and type(tbl) ~= "table" then error("bad argument #1 to 'array' (table expected)", 2) end
  return setmetatable(tbl or {}, core.array_mt)
end

-- The largest magnitudes the decoder keeps exact, as digits: -2^63 and
-- 2^64 - 1 (which 5.3 and 5.4 can only give as a float above 2^63 - 1).
local MAX_NEGATIVE, MAX_POSITIVE = "9223372036854775808", "18446744073709551615"

-- The value the JSON decoder gives for an integer: an integer on Lua 5.3
-- and 5.4; on 5.1, 5.2 and LuaJIT a number within 2^53 and an exact boxed
-- 64-bit integer beyond, so that openai.int64("4944116822809979520") ==
-- cc.seed on every runtime. Takes decimal digits with an optional "-"
-- (JSON's integer syntax), an integral number, or such a boxed value, from
-- -2^63 to 2^64 - 1.
function openai.int64(value)
  local digits = value
  if type(value) == "number" then
    if compat.tointeger(value) == nil then
      error("bad argument #1 to 'int64' (number has no integer representation)", 2)
    end
    digits = ("%d"):format(value)
  elseif type(value) ~= "string" then
    digits = compat.int64_digits(value)
    if digits == nil then
      error(("bad argument #1 to 'int64' (string expected, got %s)"):format(type(value)), 2)
    end
  end
  local sign, magnitude = digits:match("^(%-?)(%d+)$")
  if magnitude == nil or (#magnitude > 1 and magnitude:sub(1, 1) == "0") then
    error(("bad argument #1 to 'int64' (not an integer: %s)"):format(compat.quote(digits)), 2)
  end
  local limit = sign == "-" and MAX_NEGATIVE or MAX_POSITIVE
  if #magnitude > #limit or (#magnitude == #limit and magnitude > limit) then
    error(("bad argument #1 to 'int64' (%s is beyond -2^63 .. 2^64-1)"):format(digits), 2)
  end
  return (core.json_decode(digits))
end

function openai.new(opts)
  local state = client_core.new_state(opts)
  local client = client_core.new_client(state)
  local function get_state(level)
    client_core.check_usable(state, level + 1)
    return state
  end
  for name, namespace in pairs(resources.bind(get_state)) do client[name] = namespace end
  client.request = resources.request_function(get_state, client)
  return client
end

-- The module's own client, built on first use so that `require` never fails
-- for lack of an API key.
local default_client
local function default_state(level)
  if default_client == nil then
    local ok, result = pcall(openai.new)
    if not ok then error((tostring(result):gsub("^[^\n]-:%d+: ", "")), level + 1) end
    default_client = result
  end
  local state = client_core.state_of(default_client)
  client_core.check_usable(state, level + 1)
  return state
end
for name, namespace in pairs(resources.bind(default_state)) do openai[name] = namespace end
openai.request = resources.request_function(default_state, openai)

return openai
