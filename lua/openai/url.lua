-- URL building as the official SDKs do it: path parameters, query strings,
-- base URL joining.
local core = require("openai.core")
local compat = require("openai.compat")

local url = {}

local function percent(char)
  return ("%%%02X"):format(char:byte())
end

-- Path parameters keep A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) * + , ; = : @ and
-- percent-encode every other byte (so "/" -> %2F, "%" -> %25, "?" -> %3F).
function url.encode_path_param(value)
  if value:find("^[%w%-%._~!%$&'%(%)%*%+,;=:@]*$") then return value end -- nothing to encode
  return (value:gsub("[^%w%-%._~!%$&'%(%)%*%+,;=:@]", percent))
end

-- Query keys and values: RFC 3986 unreserved characters stay, the rest is
-- percent-encoded (space -> %20, "[" -> %5B).
local function encode_component(value)
  return (value:gsub("[^%w%-%._~]", percent))
end
url.encode_component = encode_component

local function sorted_keys(tbl)
  local keys = {}
  for key in pairs(tbl) do keys[#keys + 1] = key end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function scalar_text(value)
  if value == core.null then return "" end
  local kind = type(value)
  if kind == "string" then return value end
  if kind == "boolean" then return value and "true" or "false" end
  if kind == "number" then
    if compat.is_integer(value) then return ("%d"):format(value) end
    if value == math.floor(value) and value > -2^53 and value < 2^53 then return ("%d"):format(value) end
    -- NaN and infinities as C writes them, as the official SDKs send
    -- theirs rather than refuse; other floats as JSON writes them: the
    -- shortest text that reads back the same.
    if value ~= value or value == math.huge or value == -math.huge then return ("%.17g"):format(value) end
    return core.json_encode(value)
  end
  -- A boxed 64-bit integer (5.1, 5.2, LuaJIT) as its digits, as 5.3+ writes
  -- the integer it stands for.
  return compat.int64_digits(value)
end

-- Exactly the keys 1..n (or marked as an array).
local function is_sequence(tbl)
  if getmetatable(tbl) == core.array_mt then return true end
  local count, max = 0, 0
  for key in pairs(tbl) do
    if not compat.is_integer(key) or key < 1 then return false end
    count = count + 1
    if key > max then max = key end
  end
  return count > 0 and count == max
end

-- Appends key=value pairs for `value` under `key`: tables become key[sub],
-- sequences key[], booleans true/false, openai.null an empty value.
local function add_pairs(out, key, value)
  if type(value) == "table" then
    if is_sequence(value) then
      for i = 1, #value do add_pairs(out, key .. "[]", value[i]) end
    else
      for _, sub in ipairs(sorted_keys(value)) do
        add_pairs(out, key .. "[" .. tostring(sub) .. "]", value[sub])
      end
    end
    return
  end
  local text = scalar_text(value)
  if text == nil then
    error(("query parameter '%s' cannot be a %s"):format(key, type(value)), 0)
  end
  out[#out + 1] = encode_component(key) .. "=" .. encode_component(text)
end

-- Encodes a table of query parameters (keys sorted, so URLs are stable);
-- returns "" when there is nothing to send.
function url.query_string(params)
  local out = {}
  for _, key in ipairs(sorted_keys(params)) do
    if type(key) ~= "string" then error("query parameter names must be strings", 0) end
    add_pairs(out, key, params[key])
  end
  return table.concat(out, "&")
end

-- A base URL split once: what comes before its query, the same without
-- a trailing slash, and its query ("" for none; a fragment is dropped).
function url.split_base(base)
  local base_path, base_query = base:match("^([^?#]*)%??([^#]*)")
  local trimmed = base_path
  if base_path:sub(-1) == "/" then trimmed = base_path:sub(1, -2) end
  return { path = base_path, trimmed = trimmed, query = base_query }
end

-- base .. path with one slash dropped when both have it; a query in the
-- base URL is kept and put after the path. `base` is what split_base made
-- of the base URL.
function url.join_split(base, path, query)
  local prefix = base.path
  if prefix ~= base.trimmed and path:sub(1, 1) == "/" then prefix = base.trimmed end
  local joined = prefix .. path
  local base_query = base.query
  if query == nil or query == "" then
    if base_query == "" then return joined end
    return joined .. "?" .. base_query
  end
  if base_query == "" then return joined .. "?" .. query end
  return joined .. "?" .. base_query .. "&" .. query
end

-- The same for a base URL given as text.
function url.join(base, path, query)
  return url.join_split(url.split_base(base), path, query)
end

-- A URL without its userinfo: everything between "://" (or the start,
-- for a URL without scheme) and the last "@" goes. Stricter than RFC 3986,
-- which would stop at the first "/": a password with a raw "/" is hidden too.
local function without_userinfo(text)
  local scheme, rest = text:match("^(%a[%w+.-]*://)(.*)$")
  if scheme == nil then scheme, rest = "", text end
  return scheme .. (rest:match("^.*@(.*)$") or rest)
end

-- The base URL as the library shows it: no userinfo, no query, no fragment.
function url.display(base)
  return without_userinfo(base:match("^[^?#]*"))
end

return url
