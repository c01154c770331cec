-- One stream of 10 000 content chunks from the local mock: time, and the
-- memory the process needed (peak RSS from /proc/self/status, before and
-- after), reading chunk by chunk and then with final().
--   lua5.4 bench/stream_bench.lua [CHUNKS]
package.cpath = "build/?.so;" .. package.cpath
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path

local openai = require("openai")
local core = require("openai.core")
local mock = require("spec.helpers.mock")

local CHUNKS = tonumber(arg[1]) or 10000
local KEY = "sk-bench-0123456789"

local status_kb = require("bench.stats").status_kb

local server = mock.start { api_key = KEY }
local client = openai.new { api_key = KEY, base_url = server.base_url }
local params = { model = "m", messages = { { role = "user", content = "go" } }, stream = true,
                 stream_options = { include_usage = true } }
local opts = { headers = { ["X-Mock-Stream-Chunks"] = tostring(CHUNKS) } }

collectgarbage()
local rss_before, hwm_before = status_kb("VmRSS"), status_kb("VmHWM")
local started = core.monotonic()
local stream = assert(client.chat.completions.create(params, opts))
local count, bytes = 0, 0
for chunk in stream do
  local choice = chunk.choices[1]
  if choice and type(choice.delta.content) == "string" and choice.delta.content ~= "" then
    count = count + 1
    bytes = bytes + #choice.delta.content
  end
end
local elapsed = core.monotonic() - started
print(("stream:   %d content chunks (%d bytes of content) in %.3f s, %.1f us per chunk"):format(
  count, bytes, elapsed, elapsed / count * 1e6))
print(("memory:   RSS %d kB before, peak RSS (VmHWM) %d kB before and %d kB after: +%d kB; Lua heap now %.0f kB"):format(
  rss_before, hwm_before, status_kb("VmHWM"), status_kb("VmHWM") - hwm_before, collectgarbage("count")))

started = core.monotonic()
local final = assert(assert(client.chat.completions.create(params, opts)):final())
elapsed = core.monotonic() - started
print(("final():  %d characters assembled in %.3f s; peak RSS now %d kB"):format(
  #final.choices[1].message.content, elapsed, status_kb("VmHWM")))
client:close()
server:stop()
