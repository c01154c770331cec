-- require("openai"): the facade. Builds clients, and is itself a client
-- built lazily from the environment on its first call.
local core = require("openai.core")
local client_core = require("openai.client")
local errors = require("openai.errors")
local resources = require("openai.resources")

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

-- An empty (or given) table that encodes as a JSON array.
function openai.array(tbl)
  if tbl ~= nil and type(tbl) ~= "table" then error("bad argument #1 to 'array' (table expected)", 2) end
  return setmetatable(tbl or {}, core.array_mt)
end

function openai.new(opts)
  local state = client_core.new_state(opts)
  local client = client_core.new_client(state)
  local function get_state(level)
    if state.closed then error("openai: attempt to use a closed client", level + 1) end
    return state
  end
  for name, namespace in pairs(resources.bind(get_state)) do client[name] = namespace end
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
  return client_core.state_of(default_client)
end
for name, namespace in pairs(resources.bind(default_state)) do openai[name] = namespace end

return openai
