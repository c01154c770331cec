-- Finalizers that run in the middle of a call. Any Lua allocation may run a
-- __gc metamethod; these close the client, or make another call on it,
-- while the C core converts a 1.7 MB response, its headers or a stream
-- event into Lua values. Every call must give its exact result (or a clean
-- abort when the close came before the request) and nothing may crash.
-- The rounds run in a child process (spec/finalizer/rounds.lua), whose
-- small heap makes the collector finish cycles during a call; `make
-- valgrind` runs the same rounds under memcheck too (their child process is
-- not built with AddressSanitizer).
local hostile = require("spec.helpers.hostile")
local fixture = require("spec.finalizer.fixture")
local process = require("spec.helpers.process")
local util = require("spec.helpers.util")

local KEY = "sk-test-finalizer-0123456789"
-- tools/sanitize.sh sets this to the memcheck command the rounds run under.
local VALGRIND = os.getenv("OPENAI_SPEC_VALGRIND")
local ROUNDS = VALGRIND and 3 or 8

describe("finalizers during a call", function()
  local server
  setup(function()
    local big = fixture.big_text()
    assert.are.equal(1737209, #big)
    server = hostile.start { files = { ["chatcmpl-big.json"] = big, ["chatcmpl-abc123.json"] = fixture.golden_text() } }
  end)
  teardown(function() server:stop() end)

  -- Runs the rounds; returns how many had the finalizer inside the C core.
  local function rounds(scenario, mode)
    local output, ok = process.run(table.concat({ util.lua_env(), VALGRIND or "", util.lua_command(), "spec/finalizer/rounds.lua", scenario,
      process.shell_quote(server.base_url .. "/" .. mode), KEY, ROUNDS }, " "))
    assert(ok, output)
    local inside = output:match("\nrounds " .. ROUNDS .. " ok " .. ROUNDS .. " inside (%d+)\n$")
    assert(inside, output)
    return tonumber(inside), output
  end

  local function assert_inside(inside, output)
    assert.is_true(inside > 0, "the finalizer never ran inside the C core:\n" .. output)
  end

  it("a finalizer that closes the client leaves the call's result intact", function()
    assert_inside(rounds("close", "files"))
  end)

  it("a finalizer that makes another call on the same client gets its own result", function()
    assert_inside(rounds("nested", "files"))
  end)

  it("a finalizer that reads another stream and closes the client during a read gives whole events", function()
    -- The older collectors (5.1 to 5.3, LuaJIT) finish a cycle inside a
    -- read only when reads allocate more: 8 kB events there.
    local size = util.runtime == "lua5.4" and 200 or 8000
    -- Whether a cycle ends inside a read depends on how the events arrive
    -- (many at once on a busy machine): up to three sets of rounds, each
    -- of which must be right whatever it shows.
    local inside, output
    for _ = 1, 3 do
      inside, output = rounds("stream", "flood?size=" .. size .. "&count=400")
      if inside > 0 then break end
    end
    assert_inside(inside, output)
  end)
end)
