-- What differs between the runtimes openai runs on (Lua 5.1, 5.2, 5.3, 5.4
-- and LuaJIT 2.1), in one place: the rest of the Lua layer uses these and
-- never asks which runtime it is on.
local compat = {}

local math_type, floor = math.type, math.floor

-- Lua 5.3 and 5.4 have an integer subtype; 5.1, 5.2 and LuaJIT only
-- doubles, where an integer is an integral number.
if math_type then
  local tointeger = math.tointeger

  -- The integer a number stands for, or nil. Numbers only: 5.3's
  -- math.tointeger also converts strings.
  function compat.tointeger(value)
    if type(value) ~= "number" then return nil end
    return tointeger(value)
  end

  function compat.is_integer(value)
    return math_type(value) == "integer"
  end
else
  -- The int64 range, as math.tointeger has it: [-2^63, 2^63).
  local LOW, HIGH = -2 ^ 63, 2 ^ 63

  function compat.tointeger(value)
    -- NaN fails the first test, the infinities the range.
    if type(value) ~= "number" or value ~= floor(value) or value < LOW or value >= HIGH then return nil end
    return value
  end

  function compat.is_integer(value)
    return compat.tointeger(value) ~= nil
  end
end

-- A full collection that also frees what collected clients and streams
-- held. Their states are the values of weak-keyed tables, and without
-- ephemerons (Lua 5.1, and LuaJIT, which says "Lua 5.1") such a value
-- stays marked in the cycle that finds its key dead: the second cycle
-- frees it, and runs the finalizers that close its sockets.
if _VERSION == "Lua 5.1" then
  function compat.full_collect()
    collectgarbage("collect")
    collectgarbage("collect")
  end
else
  function compat.full_collect()
    collectgarbage("collect")
  end
end

-- The runtime, for the X-Stainless-Runtime(-Version) headers: "lua" and
-- "5.4", or "luajit" and "2.1.0-beta3" (LuaJIT says "Lua 5.1" in _VERSION).
local jit_version = type(jit) == "table" and jit.version or nil
if type(jit_version) == "string" then
  compat.runtime = "luajit"
  compat.runtime_version = jit_version:match("^LuaJIT%s+(%S+)") or jit_version
else
  compat.runtime = "lua"
  compat.runtime_version = _VERSION:match("[%d%.]+$") or _VERSION
end

-- Lua 5.4's %q on one line, on every runtime: 5.1 leaves control
-- characters other than CR and NUL raw, and a message quoting a header
-- name must neither break lines nor differ between runtimes. '"' and '\'
-- are escaped, LF becomes \n, other control characters \ddd (three digits
-- only before a digit, as %q writes them).
local function escape(char, digit)
  if char == '"' or char == "\\" then return "\\" .. char .. digit end
  if char == "\n" then return "\\n" .. digit end
  return (digit == "" and "\\%d" or "\\%03d"):format(char:byte()) .. digit
end

function compat.quote(text)
  return '"' .. text:gsub('([%c"\\])(%d?)', escape) .. '"'
end

-- The exact decimal digits of a boxed 64-bit integer, which the decoder
-- gives for integers beyond 2^53 on runtimes without an integer subtype;
-- nil for any other value.
function compat.int64_digits(value)
  if type(value) == "userdata" then
    local mt = getmetatable(value)
    if type(mt) == "table" and rawget(mt, "__name") == "openai.int64" then return tostring(value) end
  end
  return nil
end

-- 64-bit integers on LuaJIT. There, an integer beyond 2^53 decodes to an
-- int64_t cdata (uint64_t above 2^63 - 1): LuaJIT's own 64-bit integers,
-- which compare with numbers and print with %d. Only the FFI makes cdata,
-- so the C decoder calls int64_make for them, and the encoder asks
-- int64_cdata_digits for the digits of any cdata it meets (nil: it cannot
-- be encoded). Elsewhere both stay nil and the C core's own boxes serve.
local has_ffi, ffi = false, nil
if compat.runtime == "luajit" then has_ffi, ffi = pcall(require, "ffi") end
if has_ffi then
  local int64_t, uint64_t, istype = ffi.typeof("int64_t"), ffi.typeof("uint64_t"), ffi.istype
  local TWO_32, TWO_31 = 2 ^ 32, 2 ^ 31

  -- The integer whose magnitude is high * 2^32 + low (each below 2^32).
  function compat.int64_make(negative, high, low)
    local magnitude = uint64_t(high) * TWO_32 + low
    if negative then return int64_t(-magnitude) end -- wraps to -2^63 at most
    if high >= TWO_31 then return magnitude end
    return int64_t(magnitude)
  end

  -- tostring gives "123LL" and "123ULL".
  function compat.int64_cdata_digits(value)
    if istype(int64_t, value) then return (tostring(value):sub(1, -3)) end
    if istype(uint64_t, value) then return (tostring(value):sub(1, -4)) end
    return nil
  end

  local box_digits = compat.int64_digits
  function compat.int64_digits(value)
    if type(value) == "cdata" then return compat.int64_cdata_digits(value) end
    return box_digits(value)
  end
end

return compat
