-- Retry rules of the official SDKs, with timing bounds loose enough for a
-- busy two-core machine.
local openai = require("openai")
local core = require("openai.core")
local client_core = require("openai.client")
local mock = require("spec.helpers.mock")

local KEY = "sk-test-retry-0123456789"

describe("retries", function()
  local server, client
  local session = mock.session({ api_key = KEY }, {}, function(s, c) server, client = s, c end)
  setup(session.setup)
  teardown(session.teardown)
  before_each(session.before_each)

  local function timed_retrieve(opts)
    local started = core.monotonic()
    local cc, err = client.chat.completions.retrieve("chatcmpl-abc123", opts)
    return cc, err, core.monotonic() - started
  end

  local function retry_counts()
    local counts = {}
    for i, req in ipairs(server:requests()) do counts[i] = server:header(req, "x-stainless-retry-count") end
    return counts
  end

  for _, status in ipairs { 408, 409, 429, 500, 502, 503 } do
    it("retries status " .. status, function()
      server:script { { status = status, headers = { ["retry-after-ms"] = "10" } }, { passthrough = true } }
      local cc, err = timed_retrieve()
      assert.is_nil(err)
      assert.are.equal("chatcmpl-abc123", cc.id)
      assert.are.same({ "0", "1" }, retry_counts())
    end)
  end

  for _, status in ipairs { 400, 401, 403, 404, 422 } do
    it("does not retry status " .. status, function()
      server:script { { status = status, headers = { ["retry-after-ms"] = "10" } } }
      local _, err = timed_retrieve()
      assert.are.equal(status, err.status)
      assert.are.equal(1, server:stats().requests)
    end)
  end

  it("makes max_retries + 1 attempts and sends the retry count", function()
    server:script {
      { status = 500, headers = { ["retry-after-ms"] = "10" } },
      { status = 500, headers = { ["retry-after-ms"] = "10" } },
      { status = 500, headers = { ["retry-after-ms"] = "10" } },
    }
    local _, err = timed_retrieve()
    assert.are.equal("InternalServerError", err.name)
    assert.are.same({ "0", "1", "2" }, retry_counts())
  end)

  it("honours max_retries per call and per client", function()
    server:script { { status = 500, headers = { ["retry-after-ms"] = "10" } }, { status = 500 } }
    local _, err = timed_retrieve { max_retries = 0 }
    assert.are.equal(500, err.status)
    assert.are.equal(1, server:stats().requests)
    server:reset()
    local one = openai.new { api_key = KEY, base_url = server.base_url, max_retries = 1 }
    server:script { { status = 500, headers = { ["retry-after-ms"] = "10" } }, { status = 500 }, { status = 500 } }
    local _, err2 = one.chat.completions.retrieve("chatcmpl-abc123")
    one:close()
    assert.are.equal(500, err2.status)
    assert.are.equal(2, server:stats().requests)
  end)

  it("retries a 400 with x-should-retry: true", function()
    server:script { { status = 400, headers = { ["x-should-retry"] = "true", ["retry-after-ms"] = "10" } }, { passthrough = true } }
    assert(timed_retrieve())
    assert.are.equal(2, server:stats().requests)
  end)

  it("does not retry a 500 with x-should-retry: false", function()
    server:script { { status = 500, headers = { ["x-should-retry"] = "false" } } }
    local _, err = timed_retrieve()
    assert.are.equal(500, err.status)
    assert.are.equal(1, server:stats().requests)
  end)

  it("waits retry-after-ms milliseconds", function()
    server:script { { status = 429, headers = { ["retry-after-ms"] = "150" } }, { passthrough = true } }
    local cc, _, elapsed = timed_retrieve()
    assert(cc)
    assert.is_true(elapsed >= 0.15 and elapsed < 0.36, "elapsed " .. elapsed)
  end)

  local no_delay = {
    { "retry-after-ms 0, without looking at retry-after", { ["retry-after-ms"] = "0", ["retry-after"] = "5" } },
    { "a hexadecimal retry-after-ms", { ["retry-after-ms"] = "0x10" } },
  }
  for _, case in ipairs(no_delay) do
    it("backs off for " .. case[1], function()
      server:script { { status = 429, headers = case[2] }, { passthrough = true } }
      local cc, _, elapsed = timed_retrieve()
      assert(cc)
      assert.is_true(elapsed >= 0.375 and elapsed < 0.9, "elapsed " .. elapsed)
    end)
  end

  it("waits retry-after seconds", function()
    server:script { { status = 503, headers = { ["retry-after"] = "1" } }, { passthrough = true } }
    local cc, _, elapsed = timed_retrieve()
    assert(cc)
    assert.is_true(elapsed >= 1 and elapsed < 1.6, "elapsed " .. elapsed)
  end)

  it("accepts fractional retry-after seconds", function()
    server:script { { status = 503, headers = { ["retry-after"] = "0.2" } }, { passthrough = true } }
    local cc, _, elapsed = timed_retrieve()
    assert(cc)
    assert.is_true(elapsed >= 0.2 and elapsed < 0.36, "elapsed " .. elapsed)
  end)

  it("waits until a retry-after HTTP date", function()
    local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 2)
    server:script { { status = 503, headers = { ["retry-after"] = date } }, { passthrough = true } }
    local cc, _, elapsed = timed_retrieve()
    assert(cc)
    assert.is_true(elapsed >= 0.9 and elapsed < 2.6, "elapsed " .. elapsed)
  end)

  it("falls back to backoff when retry-after is beyond 60 s", function()
    server:script { { status = 503, headers = { ["retry-after"] = "120" } }, { passthrough = true } }
    local cc, _, elapsed = timed_retrieve()
    assert(cc)
    assert.is_true(elapsed >= 0.375 and elapsed < 0.9, "elapsed " .. elapsed)
  end)

  it("falls back to backoff for an unparsable retry-after", function()
    server:script { { status = 503, headers = { ["retry-after"] = "soon" } }, { passthrough = true } }
    local cc, _, elapsed = timed_retrieve()
    assert(cc)
    assert.is_true(elapsed >= 0.375 and elapsed < 0.9, "elapsed " .. elapsed)
  end)

  it("backs off 0.375-0.5 s, then 0.75-1 s", function()
    server:script { { status = 500 }, { status = 500 }, { passthrough = true } }
    local cc, _, elapsed = timed_retrieve()
    assert(cc)
    assert.is_true(elapsed >= 1.125 and elapsed < 2.0, "elapsed " .. elapsed)
  end)

  it("computes the documented default delays", function()
    for retry, bounds in pairs { [0] = { 0.375, 0.5 }, [1] = { 0.75, 1 }, [2] = { 1.5, 2 }, [3] = { 3, 4 }, [4] = { 6, 8 }, [9] = { 6, 8 } } do
      for _ = 1, 50 do
        local delay = client_core.retry_delay({}, retry)
        assert.is_true(delay >= bounds[1] and delay <= bounds[2], retry .. ": " .. delay)
      end
    end
    assert.are.equal(0.25, client_core.retry_delay({ ["retry-after-ms"] = "250" }, 0))
    assert.are.equal(2, client_core.retry_delay({ ["retry-after"] = "2" }, 0))
    assert.are.equal(60, client_core.retry_delay({ ["retry-after"] = "60" }, 0))
    assert.is_true(client_core.retry_delay({ ["retry-after"] = "61" }, 0) <= 0.5)
    assert.is_true(client_core.retry_delay({ ["retry-after-ms"] = "-1" }, 0) >= 0.375)
  end)

  describe("the server's delay", function()
    -- The backoff of the first retry, 0.375-0.5 s, computed from the same
    -- random numbers as retry_delay draws.
    local function delay_and_backoff(headers, retry)
      math.randomseed(20261125)
      local delay = client_core.retry_delay(headers, retry)
      math.randomseed(20261125)
      return delay, math.min(0.5 * 2 ^ retry, 8) * (1 - math.random() * 0.25)
    end

    local accepted = {
      { "retry-after-ms", "1500", 1.5 }, { "retry-after-ms", "250", 0.25 }, { "retry-after-ms", "1.5", 0.0015 },
      { "retry-after-ms", ".5", 0.0005 }, { "retry-after-ms", "1e3", 1.0 }, { "retry-after-ms", "1E3", 1.0 },
      { "retry-after-ms", "2.5e+3", 2.5 }, { "retry-after-ms", "5e-1", 0.0005 }, { "retry-after-ms", " 1500 ", 1.5 },
      { "retry-after-ms", "\t1500\t", 1.5 }, { "retry-after-ms", "+1500", 1.5 }, { "retry-after-ms", "1500.", 1.5 },
      { "retry-after-ms", "0001500", 1.5 }, { "retry-after-ms", "60000", 60 }, { "retry-after-ms", "1", 0.001 },
      { "retry-after", "2", 2 }, { "retry-after", "1.5", 1.5 }, { "retry-after", ".5", 0.5 },
      { "retry-after", "1e1", 10 }, { "retry-after", " 3 ", 3 }, { "retry-after", "+3", 3 }, { "retry-after", "60", 60 },
    }
    it("takes decimal numbers with optional spaces, +, fraction and exponent", function()
      for _, case in ipairs(accepted) do
        local delay = client_core.retry_delay({ [case[1]] = case[2] }, 0)
        assert.are.equal(case[3], delay, ("%s: %q"):format(case[1], case[2]))
      end
    end)

    local refused = {
      "0x400", "0X10", "0x1p4", "inf", "-inf", "+inf", "infinity", "nan", "-nan", "-1", "-0", "- 1", "0", "0.0", "0e5",
      "+-1", "++1", "1_000", "1,5", "1.5.1", ".", "e3", "1e", "1e+", "1e3.5", "", " ", "1 5", "1s", "\0001",
      "60001", "1e400", "9" .. ("9"):rep(400),
    }
    it("backs off for hex, inf, nan, signs, 0, other text and values over 60 s", function()
      for _, text in ipairs(refused) do
        for retry, name in ipairs { "retry-after-ms", "retry-after" } do
          local delay, backoff = delay_and_backoff({ [name] = text }, retry)
          assert.are.equal(backoff, delay, ("%s: %q"):format(name, text))
        end
      end
    end)

    it("takes retry-after-ms over retry-after, and retry-after when retry-after-ms is not a number", function()
      assert.are.equal(0.5, client_core.retry_delay({ ["retry-after-ms"] = "500", ["retry-after"] = "3" }, 0))
      assert.are.equal(3, client_core.retry_delay({ ["retry-after-ms"] = "0x400", ["retry-after"] = "3" }, 0))
      assert.are.equal(3, client_core.retry_delay({ ["retry-after-ms"] = "-5", ["retry-after"] = "3" }, 0))
      -- a number out of range is the server's answer: back off
      local delay, backoff = delay_and_backoff({ ["retry-after-ms"] = "0", ["retry-after"] = "3" }, 0)
      assert.are.equal(backoff, delay)
      delay, backoff = delay_and_backoff({ ["retry-after-ms"] = "90000", ["retry-after"] = "3" }, 0)
      assert.are.equal(backoff, delay)
    end)

    it("takes retry-after as an HTTP date", function()
      local now = os.time()
      local delay = client_core.retry_delay({ ["retry-after"] = os.date("!%a, %d %b %Y %H:%M:%S GMT", now + 30) }, 0)
      assert.is_true(delay == 30 or delay == 29, "delay " .. delay)
      local past, backoff = delay_and_backoff({ ["retry-after"] = os.date("!%a, %d %b %Y %H:%M:%S GMT", now - 30) }, 0)
      assert.are.equal(backoff, past)
      local far
      far, backoff = delay_and_backoff({ ["retry-after"] = os.date("!%a, %d %b %Y %H:%M:%S GMT", now + 3600) }, 0)
      assert.are.equal(backoff, far)
    end)

    it("backs off without headers", function()
      local delay, backoff = delay_and_backoff(nil, 2)
      assert.are.equal(backoff, delay)
      assert.is_true(delay >= 1.5 and delay <= 2)
    end)
  end)

  it("retries timeouts, each attempt with its own timeout", function()
    server:script {
      { delay_ms = 2000, passthrough = true },
      { delay_ms = 2000, passthrough = true },
      { passthrough = true },
    }
    local cc, err, elapsed = timed_retrieve { timeout = 0.25 }
    assert.is_nil(err)
    assert(cc)
    assert.are.equal(3, server:stats().requests)
    -- two timeouts (0.5 s) plus two backoffs (>= 1.125 s)
    assert.is_true(elapsed >= 1.6 and elapsed < 3.5, "elapsed " .. elapsed)
  end)

  it("retries connection errors and then reports them", function()
    local refused = openai.new { api_key = KEY, base_url = "http://127.0.0.1:" .. mock.free_port() .. "/v1", max_retries = 1 }
    local started = core.monotonic()
    local _, err = refused.chat.completions.retrieve("chatcmpl-abc123")
    local elapsed = core.monotonic() - started
    refused:close()
    assert.are.equal("APIConnectionError", err.name)
    assert.is_true(elapsed >= 0.375 and elapsed < 1.2, "elapsed " .. elapsed)
  end)

  it("retries a connection reset", function()
    server:script { { reset = true }, { passthrough = true } }
    assert(timed_retrieve())
    assert.are.equal(2, server:stats().requests)
  end)
end)
