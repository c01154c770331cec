-- An anchor of `make bench`: Lua 5.1 with Debian's lua-curl (Lua-cURL 0.3)
-- and lua-cjson, one easy handle reused (keep-alive). GETs URL again and
-- again for SECONDS, decoding each body; checks the first answer's status
-- and id. It sends Authorization and Accept, or with HEADERS_FILE the header
-- lines of that file (bench/client_headers.lua: the ones this client sends).
--   lua5.1 bench/http_luacurl.lua URL SECONDS EXPECTED_ID [HEADERS_FILE]
-- Prints "RESULT <calls> <wall seconds> <process CPU seconds>".
local curl = require("curl")
local cjson = require("cjson")

local url, seconds, expected, headers_file = arg[1], tonumber(arg[2]), arg[3], arg[4]
if not (url and seconds and expected) then
  io.stderr:write("usage: lua5.1 bench/http_luacurl.lua URL SECONDS EXPECTED_ID\n")
  os.exit(2)
end

local concat = table.concat
local decode = cjson.decode

local chunks, n = {}, 0
local status
local easy = curl.easy_init()
easy:setopt(curl.OPT_URL, url)
local headers = { "Authorization: Bearer sk-bench-0123456789", "Accept: application/json" }
if headers_file then
  headers = {}
  for line in io.lines(headers_file) do
    if line ~= "" then headers[#headers + 1] = line end
  end
end
easy:setopt(curl.OPT_HTTPHEADER, headers)
easy:setopt(curl.OPT_NOSIGNAL, 1)
easy:setopt(curl.OPT_WRITEFUNCTION, function(data)
  n = n + 1
  chunks[n] = data
  return #data
end)
easy:setopt(curl.OPT_HEADERFUNCTION, function(line)
  local code = line:match("^HTTP/%S+ (%d+)")
  if code then status = tonumber(code) end
  return #line
end)

local function call()
  n = 0
  local rc = easy:perform()
  if rc ~= 0 then error("curl error " .. tostring(rc)) end
  return decode(concat(chunks, "", 1, n))
end

local first = call()
if status ~= 200 or first.id ~= expected then
  error("bad response: HTTP " .. tostring(status) .. ", id " .. tostring(first.id))
end

require("bench.timed")(call, seconds)
