-- JSON codec benchmark: openai.core's json_decode/json_encode against
-- Debian's lua-cjson (if installed), on the golden chat completion and on a
-- synthetic ~1 MB document. CPU time via os.clock.
--
--   lua5.4 bench/json_bench.lua [N [M]]
--     N  iterations on the golden fixture (default 100000)
--     M  iterations on the 1 MB document  (default 100)
-- Run from the repository root after `make` (build/openai/core.so).
package.cpath = "build/?.so;" .. package.cpath
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path

local core = require("openai.core")
local have_cjson, cjson = pcall(require, "cjson")

local N = tonumber(arg and arg[1]) or 100000
local M = tonumber(arg and arg[2]) or 100

local read_file = require("spec.helpers.util").read_file

-- A document shaped like a large list response: objects with ids, integers,
-- floats, nulls, nested arrays, and text with escapes and non-ASCII.
local function synthetic(target_bytes)
  local arr = core.array_mt
  local items = setmetatable({}, arr)
  local words = { "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "\xE2\x80\x94", "line\n", "\"q\"" }
  local i = 0
  local size = 0
  while size < target_bytes do
    i = i + 1
    local text = {}
    for w = 1, 20 do text[w] = words[(i * 7 + w) % #words + 1] end
    local item = {
      id = string.format("chatcmpl-%016x", i * 2654435761),
      object = "chat.completion",
      created = 1738960610 + i,
      seed = 4944116822809979520 - i,
      temperature = (i % 20) / 10 + 0.05,
      logprobs = core.null,
      usage = { prompt_tokens = i % 1000, completion_tokens = i % 300, total_tokens = i % 1300 },
      choices = setmetatable({
        { index = 0, finish_reason = "stop", message = { role = "assistant", content = table.concat(text, " ") } },
      }, arr),
      embedding = setmetatable({ 0.0123 * i, -0.5, 1e-7 * i, 3.14159 }, arr),
      tags = setmetatable({}, arr),
    }
    items[i] = item
    size = size + #core.json_encode(item) + 1
  end
  return core.json_encode({ object = "list", data = items })
end

local function measure(label, iterations, bytes, fn)
  fn() -- warm up
  collectgarbage()
  collectgarbage()
  local t0 = os.clock()
  for _ = 1, iterations do fn() end
  local dt = os.clock() - t0
  if dt <= 0 then dt = 1e-9 end
  print(string.format("  %-28s %10.0f ops/s %9.1f MB/s  (%d in %.2f s)",
    label, iterations / dt, iterations * bytes / dt / 1e6, iterations, dt))
  return dt
end

local function run(title, text, iterations)
  print(string.format("%s: %d bytes, %d iterations", title, #text, iterations))
  local ours = assert(core.json_decode(text))
  local ours_text = core.json_encode(ours)
  local decode, encode = core.json_decode, core.json_encode
  measure("openai.core decode", iterations, #text, function() decode(text) end)
  measure("openai.core encode", iterations, #ours_text, function() encode(ours) end)
  if have_cjson then
    local theirs = cjson.decode(text)
    local theirs_text = cjson.encode(theirs)
    local cdecode, cencode = cjson.decode, cjson.encode
    measure("cjson decode", iterations, #text, function() cdecode(text) end)
    measure("cjson encode", iterations, #theirs_text, function() cencode(theirs) end)
  end
end

print(string.format("%s, openai.core, cjson %s", _VERSION,
  have_cjson and tostring(cjson._VERSION) or "not installed"))
run("golden chatcmpl-abc123.json", read_file("spec/fixtures/chatcmpl-abc123.json"), N)
run("synthetic document", synthetic(1024 * 1024), M)
