-- An anchor of `make bench`: what Lua 5.4 users have today, LuaSocket's
-- socket.http (a new connection per call: it does not keep connections
-- alive) and lua-cjson. GETs URL again and again for SECONDS, decoding each
-- body; checks the first answer's id.
--   lua5.4 bench/http_socket.lua URL SECONDS EXPECTED_ID
-- Prints "RESULT <calls> <wall seconds> <process CPU seconds>".
local http = require("socket.http")
local ltn12 = require("ltn12")
local cjson = require("cjson")

local url, seconds, expected = arg[1], tonumber(arg[2]), arg[3]
if not (url and seconds and expected) then
  io.stderr:write("usage: lua5.4 bench/http_socket.lua URL SECONDS EXPECTED_ID\n")
  os.exit(2)
end

local concat = table.concat
local request, sink_table, decode = http.request, ltn12.sink.table, cjson.decode
local headers = { authorization = "Bearer sk-bench-0123456789", accept = "application/json" }

local function call()
  local chunks = {}
  local _, status = request { url = url, headers = headers, sink = sink_table(chunks) }
  if status ~= 200 then error("HTTP " .. tostring(status)) end
  return decode(concat(chunks))
end

local first = call()
if first.id ~= expected then error("bad response: id " .. tostring(first.id)) end

require("bench.timed")(call, seconds)
