-- Small helpers shared by the specs, and what the specs need to know about
-- the runtime they run on (tools/run-tests.sh runs them on each).
local core = require("openai.core")
local process = require("spec.helpers.process")

local util = {}

local math_type = math.type

-- The runtime under test: "lua5.1" .. "lua5.4" or "luajit".
util.is_luajit = type(jit) == "table"
util.runtime = util.is_luajit and "luajit" or "lua" .. _VERSION:match("%d+%.%d+")
-- Its Lua version as LuaRocks and install paths name it ("5.1" for LuaJIT).
util.lua_version = _VERSION:match("%d+%.%d+")
-- Lua 5.3 and 5.4 have an integer subtype; elsewhere integers beyond 2^53
-- decode to boxed values (userdata, or int64 cdata on LuaJIT).
util.has_integers = math_type ~= nil
-- Lua 5.4's to-be-closed variables (`<close>`, the generic for's closing value).
util.has_close = _VERSION == "Lua 5.4"

-- The interpreter child processes run: the one under test
-- (tools/run-tests.sh exports OPENAI_SPEC_LUA), else this runtime's.
function util.lua_command()
  return os.getenv("OPENAI_SPEC_LUA") or util.runtime
end

-- The Makefile's build directory of this runtime (make LUA=...).
function util.build_dir()
  return util.runtime == "lua5.4" and "build" or "build/" .. util.runtime
end

-- `make LUA=<name, or this runtime> target`: ok, output. Without a
-- sanitizer's preloaded runtime (make asan): the build does not need it,
-- and runs far slower with it.
function util.make(target, name)
  local output, ok = process.run("env -u LD_PRELOAD make --no-print-directory LUA=" .. (name or util.runtime)
    .. " " .. target)
  return ok, output
end

-- Where child processes find openai.core (OPENAI_SPEC_CPATH from the
-- runner, else the Makefile's build directory of this runtime).
function util.cpath()
  return os.getenv("OPENAI_SPEC_CPATH") or util.build_dir() .. "/?.so"
end

-- "LUA_CPATH=...": the environment a shell command gives a child Lua
-- process so that it loads this module. `make asan` sets LUA_CPATH_5_4,
-- which Lua 5.4 reads first, to run its instrumented build instead.
function util.lua_env()
  return "LUA_CPATH=" .. process.shell_quote(util.cpath() .. ";;")
end

-- "LUA_CPATH=... <interpreter>": the start of a shell command running a
-- Lua script of the specs with this module.
function util.lua_prefix()
  return util.lua_env() .. " " .. util.lua_command()
end

-- A text as a Lua pattern that matches just that text.
function util.literal(text)
  return (text:gsub("%p", "%%%0"))
end

util.pack = table.pack or function(...) return { n = select("#", ...), ... } end
util.unpack = table.unpack or unpack -- luacheck: ignore (5.1's global)

-- string.rep with a separator (Lua 5.1's takes none).
function util.rep(text, n, sep)
  if sep == nil or n <= 1 then return text:rep(n) end
  return (text .. sep):rep(n - 1) .. text
end

-- load() of a text with an environment on every runtime (5.1's load takes
-- a function, and its chunks take setfenv).
function util.load(text, name, env)
  if setfenv then -- luacheck: ignore (5.1, LuaJIT)
    local chunk, err = loadstring(text, name) -- luacheck: ignore
    if chunk and env then setfenv(chunk, env) end -- luacheck: ignore
    return chunk, err
  end
  return load(text, name, "t", env)
end

-- A new garbage object whose finalizer calls fn: a table on 5.2+, a
-- newproxy userdata where tables have no __gc (5.1, LuaJIT).
function util.garbage(fn)
  if newproxy then -- luacheck: ignore
    local proxy = newproxy(true) -- luacheck: ignore
    getmetatable(proxy).__gc = fn
    return proxy
  end
  return setmetatable({}, { __gc = fn })
end

-- Sets the incremental collector's pause and step multiplier.
function util.collector(pause, stepmul)
  if _VERSION == "Lua 5.4" then
    collectgarbage("incremental", pause, stepmul)
  else
    collectgarbage("setpause", pause)
    collectgarbage("setstepmul", stepmul)
  end
end

-- Is `value` a boxed 64-bit integer, as the decoder makes on 5.1, 5.2 and
-- LuaJIT of integers beyond 2^53?
function util.is_int64(value)
  if type(value) == "userdata" then
    local mt = getmetatable(value)
    return type(mt) == "table" and mt.__name == "openai.int64"
  end
  if type(value) == "cdata" then
    local ffi = require("ffi")
    return ffi.istype("int64_t", value) or ffi.istype("uint64_t", value)
  end
  return false
end

-- The exact decimal digits of an integer value whatever its form: an
-- integer (5.3+), an integral number within 2^53 (elsewhere), a boxed
-- int64; nil for anything else (floats on 5.3+ included).
function util.integer_text(value)
  if util.has_integers then
    return math_type(value) == "integer" and ("%d"):format(value) or nil
  end
  if type(value) == "number" then
    if value == math.floor(value) and value >= -2 ^ 53 and value <= 2 ^ 53 then return ("%d"):format(value) end
    return nil
  end
  if util.is_int64(value) then return (tostring(value):gsub("U?LL$", "")) end
  return nil
end

-- The kind of a number as this runtime tells them apart: "integer" or
-- "float" on 5.3+, "number" elsewhere; "int64" for a boxed value.
function util.number_kind(value)
  if util.is_int64(value) then return "int64" end
  if type(value) ~= "number" then return nil end
  return math_type and math_type(value) or "number"
end

-- Deep equality that also compares the kind of numbers (math.type on 5.3+,
-- so 1 and 1.0 differ there; boxed int64 values by value), the sign of a
-- zero and whether tables are arrays (openai.array_mt), so {} and an empty
-- array differ. With `strict`, every metatable must be the same. Returns
-- true, or false and where they differ.
function util.same(a, b, path, strict)
  path = path or "$"
  if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) == "number" then
    local kind_a, kind_b = util.number_kind(a), util.number_kind(b)
    if kind_a ~= kind_b then return false, path .. ": " .. kind_a .. " vs " .. kind_b end
    if a ~= b and not (a ~= a and b ~= b) then return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    -- Without a float subtype every zero has a sign to compare.
    if a == 0 and kind_a ~= "integer" and 1 / a ~= 1 / b then return false, path .. ": signed zero differs" end
    return true
  end
  if type(a) ~= "table" then
    if a ~= b then return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    return true
  end
  if strict and getmetatable(a) ~= getmetatable(b) then return false, path .. ": metatables differ" end
  if (getmetatable(a) == core.array_mt) ~= (getmetatable(b) == core.array_mt) then
    return false, path .. ": array vs object"
  end
  for k, v in pairs(a) do
    local ok, why = util.same(v, rawget(b, k), path .. "." .. tostring(k), strict)
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if rawget(a, k) == nil then return false, path .. "." .. tostring(k) .. " missing" end
  end
  return true
end

function util.read_file(path)
  return (assert(process.read_file(path), "cannot read " .. path))
end

local shell_quote = process.shell_quote
util.shell_quote = shell_quote

-- Runs a Lua chunk in a fresh process of the runtime under test with the
-- given environment (a table; false unsets a variable). Returns its output
-- and exit code.
function util.run_lua(code, environment)
  local parts = { "env" }
  for name, value in pairs(environment or {}) do
    if value == false then
      parts[#parts + 1] = "-u " .. name
    end
  end
  for name, value in pairs(environment or {}) do
    if value ~= false then parts[#parts + 1] = name .. "=" .. shell_quote(value) end
  end
  parts[#parts + 1] = "LUA_PATH=" .. shell_quote("lua/?.lua;lua/?/init.lua;./?.lua;;")
  parts[#parts + 1] = util.lua_prefix() .. " -e " .. shell_quote(code)
  return process.capture(table.concat(parts, " "))
end

-- Environment that leaves every OPENAI_* variable unset unless given.
function util.clean_env(extra)
  local environment = {
    OPENAI_API_KEY = false, OPENAI_BASE_URL = false, OPENAI_ORG_ID = false,
    OPENAI_PROJECT_ID = false, OPENAI_CUSTOM_HEADERS = false,
  }
  for k, v in pairs(extra or {}) do environment[k] = v end
  return environment
end

-- A random document to encode: leaf(r) gives the values for r = 1, 2, 3
-- (the kinds a spec is about); booleans, null, small integers, arrays and
-- objects make the rest. The same for the same math.randomseed.
function util.random_document(leaf, depth)
  depth = depth or 0
  local r = math.random(depth > 4 and 6 or 8)
  if r <= 3 then return leaf(r) end
  if r == 4 then return math.random(2) == 1 end
  if r == 5 then return core.null end
  if r == 6 then return math.random(-1000, 1000) end
  local t = r == 7 and setmetatable({}, core.array_mt) or {}
  for i = 1, math.random(0, 5) do
    if r == 7 then t[i] = util.random_document(leaf, depth + 1)
    else t["k" .. math.random(100)] = util.random_document(leaf, depth + 1) end
  end
  return t
end

return util
