-- The runtime this spec process runs on, as the Makefile names it (LUA=),
-- with its interpreter and the build directory `make LUA=...` fills.
--
--   local runtime = require("spec.helpers.runtime")
--   runtime.name         "lua5.1" .. "lua5.4" or "luajit"
--   runtime.interpreter  the command that runs it
--   runtime.build        "build" for lua5.4, else "build/<name>"
--   runtime.version      "5.1" .. "5.4" (LuaJIT: "5.1"), LuaRocks' directory name
--   runtime.make(target) runs `make LUA=<name> target`; true or false, log
local process = require("spec.helpers.process")

local runtime = {}

runtime.name = rawget(_G, "jit") and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
runtime.interpreter = runtime.name
runtime.version = runtime.name == "luajit" and "5.1" or runtime.name:sub(4)
runtime.build = runtime.name == "lua5.4" and "build" or "build/" .. runtime.name

-- The build directory and LuaRocks version of another runtime.
function runtime.of(name)
  return {
    name = name,
    interpreter = name,
    version = name == "luajit" and "5.1" or name:sub(4),
    build = name == "lua5.4" and "build" or "build/" .. name,
  }
end

function runtime.make(target, name)
  local output, ok = process.run("make --no-print-directory LUA=" .. (name or runtime.name) .. " " .. target)
  return ok, output
end

return runtime
