-- The golden completion, exactly, and the request that fetched it.
local assert = require("spec.contract.assert")
local outcome = require("spec.contract.outcome")

local cases = {}

cases[#cases + 1] = {
  name = "retrieve gives the golden completion, its 64-bit seed exact",
  call = function(client)
    return outcome.of(client.chat.completions.retrieve("chatcmpl-abc123"))
  end,
  check = function(result, mock, h)
    assert.same(h.fixture("chatcmpl-abc123"), result.value)
    assert.equal(h.int64("4944116822809979520"), result.value.seed)
    assert.matches("^req_%x+$", result.request_id)
    local req = mock:requests()[1]
    assert.equal("GET", req.method)
    assert.equal("/v1/chat/completions/chatcmpl-abc123", req.target)
    assert.equal("Bearer " .. h.KEY, mock:header(req, "authorization"))
    assert.equal("application/json", mock:header(req, "accept"))
    assert.equal("0", mock:header(req, "x-stainless-retry-count"))
    assert.equal("", req.body)
  end,
}

cases[#cases + 1] = {
  name = "sends the same request headers on every transport",
  call = function(client)
    return outcome.of(client.chat.completions.retrieve("chatcmpl-abc123", { headers = { ["X-Extra"] = "1" } }))
  end,
  check = function(result, mock, h)
    assert.equal("chatcmpl-abc123", result.value.id)
    local names = {}
    for _, pair in ipairs(mock:requests()[1].headers) do
      local name = pair[1]:lower()
      -- libcurl asks for compressed bodies, which it decodes; the ngx
      -- transport does not.
      if name ~= "accept-encoding" then names[#names + 1] = name end
    end
    table.sort(names)
    assert.same({
      "accept", "authorization", "host", "user-agent", "x-extra", "x-stainless-arch", "x-stainless-lang",
      "x-stainless-os", "x-stainless-package-version", "x-stainless-retry-count", "x-stainless-runtime",
      "x-stainless-runtime-version",
    }, names)
    assert.equal("1", mock:header(mock:requests()[1], "x-extra"))
  end,
}

cases[#cases + 1] = {
  name = "a path parameter is percent-encoded",
  call = function(client)
    return outcome.of(client.chat.completions.retrieve("a b/c?d"))
  end,
  check = function(result, mock)
    assert.equal("NotFoundError", result.error.name)
    assert.equal(404, result.error.status)
    assert.equal("/v1/chat/completions/a%20b%2Fc%3Fd", mock:requests()[1].target)
  end,
}

return cases
