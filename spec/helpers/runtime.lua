-- The runtime this spec process runs on, as the Makefile names it (LUA=),
-- and the build directory `make LUA=...` fills for it.
--
--   local runtime = require("spec.helpers.runtime")
--   runtime.name    "lua5.1" .. "lua5.4" or "luajit"
--   runtime.build   "build" for lua5.4, else "build/<name>"
--   runtime.make(target[, name])   `make LUA=<name, or this runtime> target`: ok, output
local process = require("spec.helpers.process")

local runtime = {}

runtime.name = rawget(_G, "jit") and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
runtime.build = runtime.name == "lua5.4" and "build" or "build/" .. runtime.name

-- Without a sanitizer's preloaded runtime (make asan): the build does not
-- need it, and runs far slower with it.
function runtime.make(target, name)
  local output, ok = process.run("env -u LD_PRELOAD make --no-print-directory LUA=" .. (name or runtime.name)
    .. " " .. target)
  return ok, output
end

return runtime
