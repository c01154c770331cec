-- A program interrupted with Ctrl-C while the client waits, for
-- spec/interrupt_spec.lua. Run by the standalone interpreter, whose SIGINT
-- handler sets a hook that raises "interrupted!".
--
--   lua5.4 spec/interrupt/child.lua MODE BASE_URL API_KEY
--   (or LUA_CPATH='build/luajit/?.so;;' luajit spec/interrupt/child.lua ...)
--
-- Prints "ready" before the call that waits. MODE:
--   request, stream_open, stream_read, retry_sleep: the call is left to the
--     interrupt (the interpreter prints "interrupted!" and exits 1);
--   recover: the interrupted call is caught with pcall, then the same client
--     retrieves chatcmpl-abc123 and prints its id.
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path
-- Lua 5.4's module from build/, unless the environment names one (the
-- specs give the runtime's, make asan its instrumented build).
if not (os.getenv("LUA_CPATH_5_4") or os.getenv("LUA_CPATH")) then package.cpath = "build/?.so;" .. package.cpath end
local openai = require("openai")

local mode, base_url, api_key = arg[1], arg[2], arg[3]
local client = openai.new { api_key = api_key, base_url = base_url, max_retries = mode == "retry_sleep" and 1 or 0 }
local PARAMS = { model = "m", stream = true, messages = { { role = "user", content = "hi" } } }

local function ready()
  io.stdout:write("ready\n")
  io.stdout:flush()
end

if mode == "request" then
  ready()
  client.chat.completions.retrieve("chatcmpl-abc123")
elseif mode == "stream_open" then
  ready()
  client.chat.completions.create(PARAMS)
elseif mode == "stream_read" then
  local stream = assert(client.chat.completions.create(PARAMS))
  ready()
  stream:next()
elseif mode == "retry_sleep" then
  ready()
  client.chat.completions.retrieve("chatcmpl-abc123")
elseif mode == "recover" then
  ready()
  local ok, err = pcall(client.chat.completions.retrieve, "chatcmpl-abc123")
  io.stdout:write("caught: ", tostring(ok), " ", tostring(err):match("interrupted!") or tostring(err), "\n")
  local cc = assert(client.chat.completions.retrieve("chatcmpl-abc123"))
  io.stdout:write("then: ", cc.id, "\n")
  os.exit(0)
end
io.stdout:write("the call returned\n")
