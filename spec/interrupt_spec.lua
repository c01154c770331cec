-- Ctrl-C in the standalone interpreter ends a blocking call within a
-- fraction of a second: a request, a stream's start, a stream read and the
-- wait before a retry, and the client stays usable afterwards. The program
-- runs in a child process (spec/interrupt/child.lua) that gets SIGINT.
local mock = require("spec.helpers.mock")
local process = require("spec.helpers.process")
local util = require("spec.helpers.util")
local socket = require("socket")

local KEY = "sk-test-interrupt-0123456789"

describe("Ctrl-C", function()
  local server
  setup(function() server = mock.start { api_key = KEY } end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  -- Starts the child, sends SIGINT once it is waiting, and returns its
  -- output and the seconds it took to end after the signal.
  local function interrupt(mode)
    local out = os.tmpname()
    local pid = assert(process.spawn(table.concat({ util.lua_prefix(), "spec/interrupt/child.lua", mode,
      process.shell_quote(server.base_url), KEY, ">" .. process.shell_quote(out), "2>&1" }, " ")))
    local ready = process.wait_ready(pid, 10, function() return (process.read_file(out) or ""):find("ready\n") end)
    assert.is_true(ready, process.read_file(out))
    socket.sleep(0.3) -- into the wait
    local sent = socket.gettime()
    os.execute("kill -INT " .. pid)
    while process.alive(pid) and socket.gettime() - sent < 5 do socket.sleep(0.01) end
    local took = socket.gettime() - sent
    process.stop(pid)
    local output = process.read_file(out)
    os.remove(out)
    return output, took
  end

  local function ends_at_once(mode, script)
    server:script(script)
    local output, took = interrupt(mode)
    -- The standalone interpreter names itself: "lua5.1: interrupted!",
    -- "luajit: ...". LuaJIT's luaL_error adds where the Lua code the hook
    -- interrupted was, even at line 0: the C core's wait is in a chunk of its own.
    local where = util.is_luajit and "[^\n]-:%d+: " or ""
    assert.matches("^ready\n" .. util.literal(util.lua_command()) .. ": " .. where .. "interrupted!\nstack traceback:\n", output)
    assert.is_nil(output:find("the call returned", 1, true))
    assert.is_true(took < 0.5, ("took %.3f s"):format(took))
  end

  it("ends a request waiting for its response", function()
    ends_at_once("request", { { delay_ms = 60000, passthrough = true } })
  end)

  it("ends a stream waiting for its response to start", function()
    ends_at_once("stream_open", { { delay_ms = 60000, passthrough = true } })
  end)

  it("ends a stream read waiting for data", function()
    ends_at_once("stream_read", { { status = 200, headers = { ["content-type"] = "text/event-stream" },
                                    sse = { { data = 'data: {"choices":[]}\n\n', delay_ms = 60000 } } } })
  end)

  it("ends the wait before a retry", function()
    ends_at_once("retry_sleep", { { status = 429, headers = { ["retry-after"] = "50" },
                                    json = { error = { message = "slow down" } } } })
  end)

  it("leaves the client usable when the program catches the interruption", function()
    server:script { { delay_ms = 60000, passthrough = true } }
    local output, took = interrupt("recover")
    assert.are.equal("ready\ncaught: false interrupted!\nthen: chatcmpl-abc123\n", output)
    assert.is_true(took < 0.5, ("took %.3f s"):format(took))
  end)
end)
