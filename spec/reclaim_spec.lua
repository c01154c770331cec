-- Streams and clients a program abandons are reclaimed in time: the memory
-- and the sockets they hold count for the collector's pacing, running out
-- of file descriptors is reported as what it is, and the client collects
-- abandoned streams before it gives up. Each case runs in a child process
-- (spec/memory/child.lua) with its own file-descriptor limit.
local hostile = require("spec.helpers.hostile")
local process = require("spec.helpers.process")
local util = require("spec.helpers.util")

describe("reclaiming abandoned streams", function()
  local server
  setup(function() server = hostile.start {} end)
  teardown(function() server:stop() end)

  local function child(limit, mode, server_mode, count, heap_mb)
    return process.run(("ulimit -n %d && %s spec/memory/child.lua %s %s %d %d"):format(
      limit, util.lua_prefix(), mode, process.shell_quote(server.base_url .. "/" .. server_mode), count, heap_mb or 0))
  end

  -- A stream that sends a 16 kB event, then nothing for ten minutes: each
  -- one abandoned holds its socket and its memory until collected.
  local LONG = "slow-events?count=2&first_ms=0&every_ms=600000&size=16000"

  it("600 streams abandoned beside a 100 MB heap hold at most an eighth of the file-descriptor limit", function()
    local output, ok = child(1024, "abandon", LONG, 600, 100)
    assert.is_true(ok, output)
    local opened, max_fds = output:match("^opened (%d+) max_fds (%d+)\n")
    assert.are.equal("600", opened, output)
    assert.is_true(tonumber(max_fds) <= 1024 / 8 + 16, output)
  end)

  it("running out of file descriptors is reported as what it is", function()
    local output, ok = child(48, "keep", LONG, 100)
    assert.is_true(ok, output)
    assert.matches("^%d+: APIConnectionError: Connection error%. %(cannot open a socket: this process has as many "
      .. "files open as it may %(close the streams and clients you no longer use%)%)\nthen: ok\n", output)
  end)

  it("with the collector stopped, the client collects abandoned streams when out of file descriptors", function()
    local output, ok = child(64, "stopped", LONG, 300)
    assert.is_true(ok, output)
    assert.matches("^opened 300 max_fds %d+\n", output)
  end)
end)
