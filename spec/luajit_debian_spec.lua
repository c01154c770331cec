-- The LuaJIT build (`make LUA=luajit`, against OpenResty's luajit2 headers)
-- also runs in Debian's own luajit, which conflicts with luajit2 as a
-- package: tools/luajit-debian.sh downloads and unpacks it under
-- build/luajit-debian/. Skipped only when the packages cannot be downloaded.
local mock = require("spec.helpers.mock")
local process = require("spec.helpers.process")
local util = require("spec.helpers.util")

local KEY = "sk-test-luajit-debian-0123456789"
local FIELDS = require("spec.helpers.golden").FIELDS

-- The golden fixture decoded and encoded again where numbers have no float
-- subtype: keys sorted, 1.0 and 0.0 written as 1 and 0, the seed exact.
local JSON = [[{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":]]
  .. [["Mind of circuits hum, \nLearning patterns in silence— \nFuture's quiet spark.","function_call":null,]]
  .. [["role":"assistant","tool_calls":null}}],"created":1738960610,"frequency_penalty":0,"id":"chatcmpl-abc123",]]
  .. [["input_user":null,"metadata":{},"model":"gpt-4o-2024-08-06","object":"chat.completion","presence_penalty":0,]]
  .. [["request_id":"req_ded8ab984ec4bf840f37566c1011c417","response_format":null,"seed":4944116822809979520,]]
  .. [["service_tier":"default","system_fingerprint":"fp_50cad350e4","temperature":1,"tool_choice":null,]]
  .. [["tools":null,"top_p":1,"usage":{"completion_tokens":18,"prompt_tokens":13,"total_tokens":31}}]]

-- Run by each LuaJIT: which one it is (OpenResty's has table.nkeys,
-- Debian's has not), the golden fixture decoded and encoded again, and a
-- retrieve against the mock.
local CHECK = [[
local openai = require("openai")
local base_url, key = BASE_URL, KEY
local is_openresty = pcall(require, "table.nkeys")
io.write("vm=", jit.version, is_openresty and " (OpenResty)" or " (not OpenResty)", "\n")
local f = assert(io.open("spec/fixtures/chatcmpl-abc123.json", "rb"))
local fixture = f:read("*a")
f:close()
io.write("json=", openai.json.encode(openai.json.decode(fixture)), "\n")
local client = openai.new { api_key = key, base_url = base_url, max_retries = 0, timeout = 5 }
local cc, err = client.chat.completions.retrieve("chatcmpl-abc123")
if not cc then io.write("error: ", tostring(err), "\n") os.exit(1) end
io.write(require("spec.helpers.golden").fields(openai, cc))
client:close()
]]

describe("Debian's luajit", function()
  local interpreter, why_not, server

  setup(function()
    local output, code = process.run("env -u LD_PRELOAD sh tools/luajit-debian.sh; echo \"status=$?\"")
    code = tonumber(output:match("status=(%d+)\n$"))
    output = output:gsub("status=%d+\n$", "")
    if code == 77 then
      why_not = "Debian's luajit packages cannot be downloaded here:\n" .. output
      return
    end
    assert.are.equal(0, code, output)
    interpreter = output:match("([^\n]+)\n$")
    local ok, log = util.make("all", "luajit")
    assert(ok, "make LUA=luajit failed:\n" .. log)
    server = mock.start { api_key = KEY }
  end)
  teardown(function()
    if server then server:stop() end
  end)

  local function check(luajit)
    local command = table.concat({
      "env -u LD_PRELOAD",
      "LUA_PATH=" .. util.shell_quote("lua/?.lua;lua/?/init.lua;./?.lua"),
      "LUA_CPATH=" .. util.shell_quote("build/luajit/?.so"),
      luajit, "-e", util.shell_quote((CHECK:gsub("BASE_URL", ("%q"):format(server.base_url))
        :gsub("KEY", ("%q"):format(KEY)))),
    }, " ")
    return process.run(command)
  end

  it("loads the module built against luajit2's headers, decodes and encodes exactly, and retrieves", function()
    if why_not then
      pending(why_not)
      return
    end
    local output, ok = check(interpreter)
    assert(ok, output)
    assert.are.equal("vm=LuaJIT 2.1.0-beta3 (not OpenResty)\njson=" .. JSON .. "\n" .. FIELDS, output)
    -- OpenResty's luajit gives the very same, but for its name.
    output, ok = check("luajit")
    assert(ok, output)
    assert.are.equal("vm=LuaJIT 2.1.0-beta3 (OpenResty)\njson=" .. JSON .. "\n" .. FIELDS, output)
  end)
end)
