-- Retries: which failures, how many, the retry count header, retry-after.
local assert = require("spec.contract.assert")
local outcome = require("spec.contract.outcome")

local function retrieve(client)
  return outcome.of(client.chat.completions.retrieve("chatcmpl-abc123"))
end

local function counts(mock)
  local out = {}
  for i, req in ipairs(mock:requests()) do out[i] = mock:header(req, "x-stainless-retry-count") end
  return out
end

local cases = {}

cases[#cases + 1] = {
  name = "a 500 then a 200: retried once, with retry-after-ms",
  script = { { status = 500, headers = { ["retry-after-ms"] = "10" }, json = { error = { message = "boom" } } } },
  client = { max_retries = 2 },
  call = retrieve,
  check = function(result, mock)
    assert.equal("chatcmpl-abc123", result.value.id)
    assert.same({ "0", "1" }, counts(mock))
  end,
}

cases[#cases + 1] = {
  name = "429 with retry-after in seconds, then success",
  script = { { status = 429, headers = { ["retry-after"] = "0.05" }, json = { error = { message = "slow" } } } },
  client = { max_retries = 1 },
  call = retrieve,
  check = function(result, mock)
    assert.equal("chatcmpl-abc123", result.value.id)
    assert.same({ "0", "1" }, counts(mock))
  end,
}

cases[#cases + 1] = {
  name = "x-should-retry: false stops retries",
  script = { { status = 503, headers = { ["x-should-retry"] = "false" }, json = { error = { message = "no" } } } },
  client = { max_retries = 3 },
  call = retrieve,
  check = function(result, mock)
    assert.equal("InternalServerError", result.error.name)
    assert.same({ "0" }, counts(mock))
  end,
}

cases[#cases + 1] = {
  name = "the last attempt's error after max_retries",
  script = {
    { status = 500, headers = { ["retry-after-ms"] = "1" }, json = { error = { message = "one" } } },
    { status = 502, headers = { ["retry-after-ms"] = "1" }, json = { error = { message = "two" } } },
    { status = 503, headers = { ["retry-after-ms"] = "1" }, json = { error = { message = "three" } } },
  },
  client = { max_retries = 2 },
  call = retrieve,
  check = function(result, mock)
    assert.equal("503 three", result.error.message)
    assert.same({ "0", "1", "2" }, counts(mock))
  end,
}

cases[#cases + 1] = {
  name = "a connection failure is retried",
  script = { { reset = true } },
  client = { max_retries = 1 },
  call = retrieve,
  check = function(result, mock)
    assert.equal("chatcmpl-abc123", result.value.id)
    assert.same({ "0", "1" }, counts(mock))
  end,
}

cases[#cases + 1] = {
  name = "per-attempt timeout: a slow first attempt, a prompt second",
  script = { { passthrough = true, delay_ms = 1500 } },
  client = { max_retries = 1, timeout = 0.5 },
  call = retrieve,
  check = function(result, mock)
    assert.equal("chatcmpl-abc123", result.value.id)
    assert.same({ "0", "1" }, counts(mock))
  end,
}

cases[#cases + 1] = {
  name = "a timeout without retries is APIConnectionTimeoutError",
  script = { { passthrough = true, delay_ms = 1500 } },
  client = { timeout = 0.3 },
  call = retrieve,
  check = function(result)
    assert.equal("APIConnectionTimeoutError", result.error.name)
    assert.equal("Request timed out.", result.error.message)
  end,
}

cases[#cases + 1] = {
  name = "timeout = math.huge waits as long as it takes",
  script = { { passthrough = true, delay_ms = 300 } },
  client = { timeout = math.huge },
  call = retrieve,
  check = function(result, mock)
    assert.equal("chatcmpl-abc123", result.value.id)
    assert.same({ "0" }, counts(mock))
  end,
}

cases[#cases + 1] = {
  name = "a call's own timeout and max_retries",
  script = { { passthrough = true, delay_ms = 1500 }, { passthrough = true, delay_ms = 1500 } },
  client = { max_retries = 0, timeout = 30 },
  call = function(client)
    return outcome.of(client.chat.completions.retrieve("chatcmpl-abc123", { timeout = 0.3, max_retries = 1 }))
  end,
  check = function(result, mock)
    assert.equal("APIConnectionTimeoutError", result.error.name)
    assert.same({ "0", "1" }, counts(mock))
    assert.equal("0", mock:header(mock:requests()[1], "x-stainless-timeout"))
  end,
}

return cases
