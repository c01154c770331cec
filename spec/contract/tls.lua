-- HTTPS through a local TLS front (stunnel) with a certificate of its own:
-- trusted, it works; from another CA, the call fails before any request.
-- The libcurl transport trusts ca_file; the ngx transport trusts nginx's
-- lua_ssl_trusted_certificate (the spec sets both to the same CA).
local assert = require("spec.contract.assert")
local outcome = require("spec.contract.outcome")

local function retrieve(client)
  return outcome.of(client.chat.completions.retrieve("chatcmpl-abc123"))
end

local function through(url_field)
  return function(env)
    local opts = { base_url = env[url_field] }
    if env.transport == "curl" then opts.ca_file = env.ca_file end
    return opts
  end
end

return {
  {
    name = "https with a trusted certificate",
    tls = true,
    client = through("tls_url"),
    call = retrieve,
    check = function(result, mock)
      assert.equal("chatcmpl-abc123", result.value.id)
      assert.equal(1, mock:stats().requests)
    end,
  },
  {
    name = "https with a certificate of an unknown CA is APIConnectionError, nothing sent",
    tls = true,
    client = through("untrusted_url"),
    call = retrieve,
    check = function(result, mock)
      assert.equal("APIConnectionError", result.error.name)
      assert.equal(0, mock:stats().requests)
    end,
  },
}
