-- The project's client in `make bench`: one client (keep-alive), retrieving
-- the same completion again and again for SECONDS, against the local nginx
-- that tools/bench.sh starts. The answer is checked once: seed must come back
-- as the integer 4944116822809979520.
--   lua5.4 bench/retrieve_bench.lua BASE_URL COMPLETION_ID SECONDS
-- Prints "RESULT <calls> <wall seconds> <process CPU seconds>".
package.cpath = "build/?.so;" .. package.cpath
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path

local openai = require("openai")

local base_url, id, seconds = arg[1], arg[2], tonumber(arg[3])
if not (base_url and id and seconds) then
  io.stderr:write("usage: lua5.4 bench/retrieve_bench.lua BASE_URL COMPLETION_ID SECONDS\n")
  os.exit(2)
end

local client = openai.new { api_key = "sk-bench-0123456789", base_url = base_url, max_retries = 0 }
local retrieve = client.chat.completions.retrieve

local first = retrieve(id) -- warm up, and check the answer once
if first == nil or math.type(first.seed) ~= "integer" or first.seed ~= 4944116822809979520 then
  error("bad response: seed " .. tostring(first and first.seed))
end

require("bench.timed")(function()
  if retrieve(id) == nil then error("no response") end
end, seconds)
client:close()
