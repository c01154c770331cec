-- Embedding hosts run several lua_States on several threads. The C host of
-- spec/threads/host.c (built by `make threads-host`) starts 8 pthreads,
-- each with its own state, and each makes 1000 retrieves and 50 streamed
-- creates against one mock; every result is checked inside the host.
-- (`make tsan` runs the same host and load under ThreadSanitizer.)
-- The 5.4 run only (tools/run-tests.sh): the host links liblua5.4 and loads
-- build/openai/core.so, whatever the runtime under test.
local mock = require("spec.helpers.mock")
local util = require("spec.helpers.util")

local THREADS, RETRIEVES, STREAMS = 8, 1000, 50
local KEY = "sk-test-threads-0123456789"

describe("threads", function()
  local server

  setup(function()
    os.execute("mkdir -p build/threads")
    local ok = os.execute("make --no-print-directory threads-host > build/threads/make.log 2>&1")
    assert(ok, "make threads-host failed:\n" .. util.read_file("build/threads/make.log"))
    server = mock.start { api_key = KEY }
  end)

  teardown(function()
    if server then server:stop() end
  end)

  it("8 lua_States on 8 threads share one mock and every call succeeds", function()
    -- No --cpath: the host keeps the default, LUA_CPATH (LUA_CPATH_5_4 wins
    -- when set, as `make asan` does to load the instrumented module).
    local command = table.concat({
      "LUA_CPATH=" .. util.shell_quote("build/?.so;;"),
      "timeout 600 build/threads/host",
      "--base-url", util.shell_quote(server.base_url),
      "--api-key", util.shell_quote(KEY),
      "--lua-dir lua",
      "--threads", THREADS, "--retrieves", RETRIEVES, "--streams", STREAMS,
      "2>&1",
    }, " ")
    local pipe = assert(io.popen(command))
    local output = pipe:read("a")
    local _, _, code = pipe:close()
    assert.are.equal(0, code, output)

    local threads, retrieves, retrieves_of, streams, streams_of, failures =
      output:match("total: threads=(%d+) retrieves=(%d+)/(%d+) streams=(%d+)/(%d+) failures=(%d+)")
    assert.is_not_nil(threads, output)
    assert.are.same(
      { THREADS, THREADS * RETRIEVES, THREADS * RETRIEVES, THREADS * STREAMS, THREADS * STREAMS, 0 },
      { tonumber(threads), tonumber(retrieves), tonumber(retrieves_of), tonumber(streams),
        tonumber(streams_of), tonumber(failures) })
    for id = 1, THREADS do
      assert.truthy(output:find(("thread %d: retrieves=%d/%d streams=%d/%d failures=0 "):format(
        id, RETRIEVES, RETRIEVES, STREAMS, STREAMS), 1, true), output)
    end

    -- The mock saw exactly these requests, and each client (one per thread)
    -- kept reusing its one keep-alive connection, streams included.
    local stats = server:stats()
    assert.are.equal(THREADS * (RETRIEVES + STREAMS), stats.requests)
    assert.are.equal(THREADS, stats.connections)
  end)
end)
