-- A stream's `timeout` bounds silence: the time since the last byte
-- arrived, or since next() was called, whichever is later. Live streams
-- that are slow (comments only, an event trickled byte by byte, a consumer
-- that takes its time) never time out; a stalled one does.
local openai = require("openai")
local core = require("openai.core")
local hostile = require("spec.helpers.hostile")

local KEY = "sk-test-stream-timeout-0123456789"
local TIMEOUT = 0.5

describe("stream timeouts", function()
  local server
  setup(function() server = hostile.start {} end)
  teardown(function() server:stop() end)

  local function open(mode)
    local client = openai.new { api_key = KEY, base_url = server.base_url .. "/" .. mode, max_retries = 0 }
    local stream = assert(client.chat.completions.create({ model = "m", stream = true, messages = {} },
                                                         { timeout = TIMEOUT }))
    return stream, client
  end

  it("comments every 0.1 s for 1 s keep a stream alive", function()
    local stream, client = open("ping?count=10&every_ms=100")
    local started = core.monotonic()
    assert.are.same({ id = "after-pings", choices = {} }, assert(stream:next()))
    assert.is_true(core.monotonic() - started >= 0.9)
    assert.is_nil(stream:next())
    client:close()
  end)

  it("an event trickled a byte every 0.05 s arrives whole", function()
    local stream, client = open("trickle?every_ms=50")
    local started = core.monotonic()
    assert.are.same({ choices = {} }, assert(stream:next()))
    assert.is_true(core.monotonic() - started >= 1.0) -- 22 bytes
    assert.is_nil(stream:next())
    client:close()
  end)

  it("a consumer that spends longer than the timeout on a chunk gets the next one", function()
    local stream, client = open("slow-events?count=3&every_ms=300")
    assert.are.equal(1, assert(stream:next()).n)
    core.sleep(1.0) -- the next event has been waiting, and the one after comes later
    assert.are.equal(2, assert(stream:next()).n)
    assert.are.equal(3, assert(stream:next()).n)
    assert.is_nil(stream:next())
    client:close()
  end)

  it("the limit counts from next() after a slow consumer, then from the last byte", function()
    -- events at 0.1 s, 1.2 s and 2.3 s
    local stream, client = open("slow-events?count=3&first_ms=100&every_ms=1100")
    assert.are.equal(1, assert(stream:next()).n)
    core.sleep(0.7) -- longer than the timeout: event 2 comes 0.4 s after the next call
    assert.are.equal(2, assert(stream:next()).n)
    local started = core.monotonic()
    local chunk, err = stream:next() -- event 3 comes 1.1 s after event 2
    local waited = core.monotonic() - started
    assert.is_nil(chunk)
    assert.are.equal("APIConnectionTimeoutError", err.name)
    assert.are.equal("no data within 0.500 s", err.cause)
    assert.is_true(waited >= 0.45 and waited < 0.9, ("waited %.3f s"):format(waited))
    client:close()
  end)

  it("a stalled stream times out after the limit", function()
    local stream, client = open("slow-events?count=1&every_ms=3000")
    local started = core.monotonic()
    local chunk, err = stream:next()
    local waited = core.monotonic() - started
    assert.is_nil(chunk)
    assert.are.equal("APIConnectionTimeoutError", err.name)
    assert.are.equal("Request timed out.", err.message)
    assert.are.equal("no data within 0.500 s", err.cause)
    assert.is_true(waited >= 0.45 and waited < 1.5, ("waited %.3f s"):format(waited))
    client:close()
  end)
end)
