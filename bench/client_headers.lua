-- The header lines this client sends with a retrieve, as the bundled mock
-- logs them (Host left out: libcurl adds its own), one a line, for the
-- anchors of `make bench` that send the same lines (floor --headers,
-- bench/http_luacurl.lua): what the headers cost shows apart from the rest.
--   lua5.4 bench/client_headers.lua > FILE
package.cpath = "build/?.so;" .. package.cpath
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path
local openai = require("openai")
local mock = require("spec.helpers.mock")

local KEY = "sk-bench-0123456789"
local server = mock.start { api_key = KEY }
local ok, err = pcall(function()
  local client = openai.new { api_key = KEY, base_url = server.base_url, max_retries = 0 }
  assert(client.chat.completions.retrieve("chatcmpl-abc123"))
  local request = server:requests()[1]
  for _, header in ipairs(request.headers) do
    if header[1]:lower() ~= "host" then io.write(header[1], ": ", header[2], "\n") end
  end
end)
server:stop()
if not ok then error(err, 0) end
