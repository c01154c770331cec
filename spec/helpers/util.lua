-- Small helpers shared by the specs.
local core = require("openai.core")

local util = {}

-- Deep equality that also compares math.type, the sign of a zero and
-- whether tables are arrays (openai.array_mt), so 1 and 1.0, or {} and an
-- empty array, differ. With `strict`, every metatable must be the same.
-- Returns true, or false and where they differ.
function util.same(a, b, path, strict)
  path = path or "$"
  if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) then return false, path .. ": " .. math.type(a) .. " vs " .. math.type(b) end
    if a ~= b and not (a ~= a and b ~= b) then return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    if a == 0 and math.type(a) == "float" and 1 / a ~= 1 / b then return false, path .. ": signed zero differs" end
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

local process = require("spec.helpers.process")

function util.read_file(path)
  return (assert(process.read_file(path), "cannot read " .. path))
end

local shell_quote = process.shell_quote
util.shell_quote = shell_quote

-- Runs a Lua 5.4 chunk in a fresh process with the given environment
-- (a table; false unsets a variable). Returns its output and exit code.
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
  parts[#parts + 1] = "LUA_CPATH=" .. shell_quote("build/?.so;;")
  parts[#parts + 1] = "lua5.4 -e " .. shell_quote(code) .. " 2>&1"
  local pipe = assert(io.popen(table.concat(parts, " ")))
  local output = pipe:read("a")
  local _, _, code_ = pipe:close()
  return output, code_
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

return util
