-- 10 000 sequential retrieves of the golden completion against the local
-- mock, with openai (one client, keep-alive) and, as the anchor, what Lua
-- users have today: LuaSocket's socket.http plus lua-cjson. Wall time.
--   lua5.4 bench/retrieve_bench.lua [N]
package.cpath = "build/?.so;" .. package.cpath
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path

local openai = require("openai")
local core = require("openai.core")
local mock = require("spec.helpers.mock")

local N = tonumber(arg[1]) or 10000
local KEY = "sk-bench-0123456789"
local server = mock.start { api_key = KEY }

local client = openai.new { api_key = KEY, base_url = server.base_url, max_retries = 0 }
assert(client.chat.completions.retrieve("chatcmpl-abc123")) -- warm up
server:reset()
local started = core.monotonic()
for _ = 1, N do
  local cc = client.chat.completions.retrieve("chatcmpl-abc123")
  if cc == nil or cc.seed ~= 4944116822809979520 then error("bad response") end
end
local elapsed = core.monotonic() - started
local stats = server:stats()
print(("openai:             %d retrieves in %.2f s: %.0f per second, %.1f us each, %d connection(s)"):format(
  N, elapsed, N / elapsed, elapsed / N * 1e6, stats.connections))
client:close()

local ok_socket, http = pcall(require, "socket.http")
local ok_cjson, cjson = pcall(require, "cjson")
if ok_socket and ok_cjson then
  local ltn12 = require("ltn12")
  local url = server.base_url .. "/chat/completions/chatcmpl-abc123"
  local headers = { authorization = "Bearer " .. KEY, accept = "application/json" }
  local M = math.min(N, 2000) -- it opens a connection per call
  server:reset()
  started = core.monotonic()
  for _ = 1, M do
    local chunks = {}
    local _, status = http.request { url = url, headers = headers, sink = ltn12.sink.table(chunks) }
    local cc = status == 200 and cjson.decode(table.concat(chunks))
    if not cc or cc.id ~= "chatcmpl-abc123" then error("bad anchor response") end
  end
  elapsed = core.monotonic() - started
  print(("socket.http+cjson:  %d retrieves in %.2f s: %.0f per second, %.1f us each, %d connection(s)"
    .. " (and seed comes back as %s)"):format(M, elapsed, M / elapsed, elapsed / M * 1e6, server:stats().connections,
    ("%.0f"):format(cjson.decode('{"s":4944116822809979520}').s)))
end
server:stop()
