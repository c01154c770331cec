-- A small JSON codec for the mock server.
--
-- Why not lua-cjson: on Lua 5.4 it turns every number into a float, so a
-- request's `seed` (4944116822809979520, above 2^53) or a stored `1.0` would
-- come back altered.  This codec keeps every decoded number as its raw text
-- (a `Number` wrapper) and writes it back verbatim, and it remembers the key
-- order of decoded objects so a re-serialised fixture still reads like the
-- original.  Speed is secondary: request bodies and fixtures are small.

local M = {}

local byte, char, sub, find, format = string.byte, string.char, string.sub, string.find, string.format
local concat, sort = table.concat, table.sort

-- JSON null: a unique sentinel (Lua nil cannot live inside tables).
M.null = setmetatable({}, { __tostring = function() return "null" end, __name = "json.null" })

-- Arrays carry this metatable so that an empty array stays `[]`.
local ARRAY = { __name = "json.array" }
M.ARRAY = ARRAY

-- A number kept as its exact source text.
local NUMBER = { __name = "json.number" }
NUMBER.__tostring = function(n) return n[1] end

-- Raw JSON text embedded as-is by the encoder (e.g. a byte-exact fixture).
local RAW = { __name = "json.raw" }

-- Key order of objects, kept aside so `pairs` on an object sees only members.
local ORDER = setmetatable({}, { __mode = "k" })

function M.array(t)
  return setmetatable(t or {}, ARRAY)
end

function M.is_array(v)
  return type(v) == "table" and getmetatable(v) == ARRAY
end

function M.is_object(v)
  return type(v) == "table" and getmetatable(v) == nil
end

function M.number(text)
  return setmetatable({ text }, NUMBER)
end

function M.is_number(v)
  return type(v) == "number" or (type(v) == "table" and getmetatable(v) == NUMBER)
end

-- Lua value of a JSON number (integer when the text is an integer that fits).
function M.tonumber(v)
  if type(v) == "number" then return v end
  if type(v) == "table" and getmetatable(v) == NUMBER then
    local text = v[1]
    if not find(text, "[.eE]") then
      local i = math.tointeger(tonumber(text))
      if i and tostring(i) == text then return i end
    end
    return tonumber(text)
  end
  return nil
end

function M.raw(text)
  return setmetatable({ text }, RAW)
end

-- An object with a fixed key order: obj("a", 1, "b", x, ...).  A nil value
-- leaves the key out, so optional members can be written inline.
function M.obj(...)
  local t, keys = {}, {}
  local n = select("#", ...)
  for i = 1, n, 2 do
    local k, v = select(i, ...)
    if v ~= nil then
      t[k] = v
      keys[#keys + 1] = k
    end
  end
  ORDER[t] = keys
  return t
end

-- Append a member to an ordered object (or replace its value in place).
function M.set(t, k, v)
  local keys = ORDER[t]
  if keys and t[k] == nil and v ~= nil then keys[#keys + 1] = k end
  t[k] = v
end

---------------------------------------------------------------------------
-- Decoder
---------------------------------------------------------------------------

local ESCAPES = {
  [34] = '"', [92] = "\\", [47] = "/", [98] = "\b",
  [102] = "\f", [110] = "\n", [114] = "\r", [116] = "\t",
}

local function utf8_encode(cp)
  return utf8.char(cp)
end

local MAX_DEPTH = 500

local decode_value -- forward

local function fail(pos, msg)
  error({ json_error = format("%s at byte %d", msg, pos) }, 0)
end

local function skip_ws(s, pos)
  local _, e = find(s, "^[ \t\r\n]*", pos)
  return e + 1
end

local function decode_string(s, pos)
  -- pos points at the opening quote
  local parts, n = {}, 0
  local i = pos + 1
  while true do
    local j = find(s, '["\\%c]', i)
    if not j then fail(pos, "unterminated string") end
    if j > i then n = n + 1; parts[n] = sub(s, i, j - 1) end
    local c = byte(s, j)
    if c == 34 then
      return concat(parts), j + 1
    elseif c == 92 then
      local e = byte(s, j + 1)
      if e == 117 then -- \uXXXX, possibly a surrogate pair
        local hex = sub(s, j + 2, j + 5)
        if not find(hex, "^%x%x%x%x$") then fail(j, "bad unicode escape") end
        local cp = tonumber(hex, 16)
        local nexti = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local lo = sub(s, j + 6, j + 11)
          local lohex = lo:match("^\\u(%x%x%x%x)$")
          local locp = lohex and tonumber(lohex, 16)
          if locp and locp >= 0xDC00 and locp <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (locp - 0xDC00)
            nexti = j + 12
          end
          -- a lone surrogate is kept as-is (encoded like any code point)
        end
        n = n + 1; parts[n] = utf8_encode(cp)
        i = nexti
      else
        local rep = e and ESCAPES[e]
        if not rep then fail(j, "bad escape") end
        n = n + 1; parts[n] = rep
        i = j + 2
      end
    else
      fail(j, "control character in string")
    end
  end
end

local function decode_number(s, pos)
  local _, e = find(s, "^-?%d+", pos)
  if not e then fail(pos, "bad number") end
  local int = sub(s, pos, e)
  if find(int, "^-?0%d") then fail(pos, "leading zero") end
  local _, fe = find(s, "^%.%d+", e + 1)
  if fe then e = fe elseif byte(s, e + 1) == 46 then fail(e + 1, "bad fraction") end
  local _, ee = find(s, "^[eE][-+]?%d+", e + 1)
  if ee then e = ee elseif find(s, "^[eE]", e + 1) then fail(e + 1, "bad exponent") end
  return M.number(sub(s, pos, e)), e + 1
end

local function decode_array(s, pos, depth)
  local t, n = setmetatable({}, ARRAY), 0
  pos = skip_ws(s, pos + 1)
  if byte(s, pos) == 93 then return t, pos + 1 end
  while true do
    local v
    v, pos = decode_value(s, pos, depth)
    n = n + 1; t[n] = v
    pos = skip_ws(s, pos)
    local c = byte(s, pos)
    if c == 93 then return t, pos + 1 end
    if c ~= 44 then fail(pos, "expected ',' or ']'") end
    pos = skip_ws(s, pos + 1)
  end
end

local function decode_object(s, pos, depth)
  local t, keys = {}, {}
  ORDER[t] = keys
  pos = skip_ws(s, pos + 1)
  if byte(s, pos) == 125 then return t, pos + 1 end
  while true do
    if byte(s, pos) ~= 34 then fail(pos, "expected string key") end
    local k
    k, pos = decode_string(s, pos)
    pos = skip_ws(s, pos)
    if byte(s, pos) ~= 58 then fail(pos, "expected ':'") end
    local v
    v, pos = decode_value(s, skip_ws(s, pos + 1), depth)
    if t[k] == nil then keys[#keys + 1] = k end -- duplicate keys: last value wins
    t[k] = v
    pos = skip_ws(s, pos)
    local c = byte(s, pos)
    if c == 125 then return t, pos + 1 end
    if c ~= 44 then fail(pos, "expected ',' or '}'") end
    pos = skip_ws(s, pos + 1)
  end
end

decode_value = function(s, pos, depth)
  local c = byte(s, pos)
  if c == 123 or c == 91 then
    if depth >= MAX_DEPTH then fail(pos, "nesting too deep") end
    if c == 123 then return decode_object(s, pos, depth + 1) end
    return decode_array(s, pos, depth + 1)
  elseif c == 34 then
    return decode_string(s, pos)
  elseif c == 45 or (c and c >= 48 and c <= 57) then
    return decode_number(s, pos)
  elseif sub(s, pos, pos + 3) == "true" then
    return true, pos + 4
  elseif sub(s, pos, pos + 4) == "false" then
    return false, pos + 5
  elseif sub(s, pos, pos + 3) == "null" then
    return M.null, pos + 4
  end
  fail(pos, c and "unexpected character" or "unexpected end of input")
end

-- decode(text) -> value | nil, message.  Never raises on bad input.
function M.decode(s)
  if type(s) ~= "string" then return nil, "not a string" end
  local ok, v, pos = pcall(function()
    local v, p = decode_value(s, skip_ws(s, 1), 0)
    return v, skip_ws(s, p)
  end)
  if not ok then
    if type(v) == "table" and v.json_error then return nil, v.json_error end
    return nil, tostring(v)
  end
  if pos <= #s then return nil, format("trailing garbage at byte %d", pos) end
  return v
end

---------------------------------------------------------------------------
-- Encoder
---------------------------------------------------------------------------

local ESC_OUT = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
  ["\b"] = "\\b", ["\f"] = "\\f" }

-- Non-ASCII bytes pass through unchanged (the real API sends raw UTF-8).
function M.encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESC_OUT[c] or format("\\u%04x", byte(c))
  end) .. '"'
end

local function encode_lua_number(v)
  if math.type(v) == "integer" then return format("%d", v) end
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  if v == math.floor(v) and math.abs(v) < 1e15 then return format("%.1f", v) end
  return format("%.17g", v)
end

local encode_into -- forward

local function is_sequence(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

local function encode_object(t, out, keys)
  out[#out + 1] = "{"
  local first, seen = true, {}
  local function member(k)
    local v = t[k]
    if v == nil then return end
    if not first then out[#out + 1] = "," end
    first = false
    out[#out + 1] = M.encode_string(tostring(k))
    out[#out + 1] = ":"
    encode_into(v, out)
  end
  if keys then
    for _, k in ipairs(keys) do
      if not seen[k] then seen[k] = true; member(k) end
    end
  end
  local rest = {}
  for k in pairs(t) do
    if not seen[k] then rest[#rest + 1] = k end
  end
  sort(rest, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(rest) do member(k) end
  out[#out + 1] = "}"
end

encode_into = function(v, out)
  local tv = type(v)
  if v == nil or v == M.null then
    out[#out + 1] = "null"
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then
    out[#out + 1] = encode_lua_number(v)
  elseif tv == "string" then
    out[#out + 1] = M.encode_string(v)
  elseif tv == "table" then
    local mt = getmetatable(v)
    if mt == NUMBER or mt == RAW then
      out[#out + 1] = v[1]
    elseif mt == ARRAY or (mt == nil and not ORDER[v] and is_sequence(v)) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode_into(v[i], out)
      end
      out[#out + 1] = "]"
    else
      encode_object(v, out, ORDER[v])
    end
  else
    error("cannot encode a " .. tv .. " as JSON")
  end
end

function M.encode(v)
  local out = {}
  encode_into(v, out)
  return concat(out)
end

-- A deep copy that keeps arrays, key order and raw numbers (used to hand out
-- fresh fixture objects after a reset).
function M.copy(v)
  if type(v) ~= "table" then return v end
  local mt = getmetatable(v)
  if mt == NUMBER or mt == RAW or v == M.null then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = M.copy(x) end
  if mt then setmetatable(t, mt) end
  if ORDER[v] then
    local keys = {}
    for i, k in ipairs(ORDER[v]) do keys[i] = k end
    ORDER[t] = keys
  end
  return t
end

return M
