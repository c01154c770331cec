-- HTTPS against a local endpoint: stunnel terminates TLS on 127.0.0.1 in
-- front of the mock, with self-signed certificates made at test time.
-- Verification is on by default; ca_file / ca_path, or SSL_CERT_FILE,
-- CURL_CA_BUNDLE and SSL_CERT_DIR from the environment, choose the trust.
local openai = require("openai")
local mock = require("spec.helpers.mock")
local tls = require("spec.helpers.tls")
local util = require("spec.helpers.util")

local KEY = "sk-test-tls-0123456789"
local SELF_SIGNED = "SSL certificate problem: self-signed certificate"

local missing = tls.missing()

describe("TLS", function()
  if missing then
    pending(missing)
    return
  end

  local server, front, mismatched, dir, good, other, wrong_ip

  setup(function()
    server = mock.start { api_key = KEY }
    dir = tls.tempdir()
    good = tls.certificate(dir, "server")
    other = tls.certificate(dir, "other")
    wrong_ip = tls.certificate(dir, "wrong-ip", { san = "IP:127.0.0.2", cn = "127.0.0.2" })
    local port = tonumber(server.base_url:match(":(%d+)/v1$"))
    front = tls.start { dir = dir, cert = good.cert, key = good.key, port = port }
    mismatched = tls.start { dir = dir, cert = wrong_ip.cert, key = wrong_ip.key, port = port }
  end)
  teardown(function()
    if front then front:stop() end
    if mismatched then mismatched:stop() end
    if server then server:stop() end
    tls.remove(dir)
  end)
  before_each(function() server:reset() end)

  local golden = openai.json.decode(util.read_file("spec/fixtures/chatcmpl-abc123.json"))

  -- One retrieve with a fresh client; the client is closed before returning.
  local function retrieve(opts)
    local o = { api_key = KEY, base_url = front.url .. "/v1", max_retries = 0 }
    for k, v in pairs(opts or {}) do o[k] = v end
    local client = openai.new(o)
    local cc, err = client.chat.completions.retrieve("chatcmpl-abc123")
    client:close()
    return cc, err
  end

  -- The error object has exactly these three fields.
  local function assert_connection_error(err, cause)
    local fields = {}
    for k, v in pairs(err) do fields[k] = v end
    assert.are.same({ name = "APIConnectionError", message = "Connection error.", cause = cause }, fields)
  end

  it("refuses a self-signed server with verification on by default", function()
    local cc, err = retrieve()
    assert.is_nil(cc)
    assert.are.equal(openai.Error, getmetatable(err))
    assert_connection_error(err, SELF_SIGNED)
    assert.are.equal("APIConnectionError: Connection error. (" .. SELF_SIGNED .. ")", tostring(err))
    -- the handshake failed: not one request (nor the API key) reached the mock
    assert.are.equal(0, server:stats().requests)
  end)

  it("trusts the certificate given as ca_file and retrieves the golden completion", function()
    local cc, err = retrieve { ca_file = good.cert }
    assert.is_nil(err)
    assert.is_true(util.same(golden, cc))
    assert.are.equal(openai.int64("4944116822809979520"), cc.seed)
    local requests = server:requests()
    assert.are.equal(1, #requests)
    assert.are.equal("/v1/chat/completions/chatcmpl-abc123", requests[1].target)
    assert.are.equal("Bearer " .. KEY, server:header(requests[1], "authorization"))
  end)

  it("trusts a hashed CA directory given as ca_path", function()
    local cc, err = retrieve { ca_path = tls.hashed_dir(dir, "ca-dir", good) }
    assert.is_nil(err)
    assert.are.equal("chatcmpl-abc123", cc.id)
  end)

  it("fails with a CA that did not sign the server's certificate", function()
    local cc, err = retrieve { ca_file = other.cert }
    assert.is_nil(cc)
    assert_connection_error(err, SELF_SIGNED)
    assert.are.equal(0, server:stats().requests)
  end)

  it("fails with a trusted certificate issued for another address", function()
    local client = openai.new { api_key = KEY, base_url = mismatched.url .. "/v1", max_retries = 0, ca_file = wrong_ip.cert }
    local cc, err = client.chat.completions.retrieve("chatcmpl-abc123")
    client:close()
    assert.is_nil(cc)
    assert_connection_error(err, "SSL: no alternative certificate subject name matches target host name '127.0.0.1'")
    assert.are.equal(0, server:stats().requests)
  end)

  it("fails for a ca_file that does not exist", function()
    local cc, err = retrieve { ca_file = dir .. "/no-such-ca.pem" }
    assert.is_nil(cc)
    assert.are.equal("APIConnectionError", err.name)
    assert.are.equal("error setting certificate file: " .. dir .. "/no-such-ca.pem", err.cause)
    assert.are.equal(0, server:stats().requests)
  end)

  describe("trust from the environment", function()
    -- Runs the module's default client in a fresh process with `environment`.
    local function retrieve_in_child(environment)
      local env = util.clean_env {
        OPENAI_API_KEY = KEY, OPENAI_BASE_URL = front.url .. "/v1",
        SSL_CERT_FILE = false, CURL_CA_BUNDLE = false, SSL_CERT_DIR = false,
      }
      for k, v in pairs(environment) do env[k] = v end
      return util.run_lua([[
        local openai = require("openai")
        local cc, err = openai.chat.completions.retrieve("chatcmpl-abc123", { max_retries = 0 })
        io.write(cc and ("ok " .. cc.id .. " " .. openai.json.encode(cc.seed)) or tostring(err))
      ]], env)
    end

    local OK = "ok chatcmpl-abc123 4944116822809979520"
    local REFUSED = "APIConnectionError: Connection error. (" .. SELF_SIGNED .. ")"

    it("SSL_CERT_FILE", function()
      assert.are.same({ OK, 0 }, { retrieve_in_child { SSL_CERT_FILE = good.cert } })
      assert.are.equal(1, server:stats().requests)
    end)

    it("CURL_CA_BUNDLE", function()
      assert.are.same({ OK, 0 }, { retrieve_in_child { CURL_CA_BUNDLE = good.cert } })
    end)

    it("SSL_CERT_DIR", function()
      assert.are.same({ OK, 0 }, { retrieve_in_child { SSL_CERT_DIR = tls.hashed_dir(dir, "env-dir", good) } })
    end)

    it("a wrong CA in SSL_CERT_FILE fails", function()
      assert.are.same({ REFUSED, 0 }, { retrieve_in_child { SSL_CERT_FILE = other.cert } })
      assert.are.equal(0, server:stats().requests)
    end)

    it("none of them set: verification against the system store fails", function()
      assert.are.same({ REFUSED, 0 }, { retrieve_in_child {} })
    end)

    it("SSL_CERT_FILE wins over CURL_CA_BUNDLE", function()
      assert.are.same({ REFUSED, 0 }, { retrieve_in_child { SSL_CERT_FILE = other.cert, CURL_CA_BUNDLE = good.cert } })
      assert.are.same({ OK, 0 }, { retrieve_in_child { SSL_CERT_FILE = good.cert, CURL_CA_BUNDLE = other.cert } })
    end)

    it("the ca_file option wins over SSL_CERT_FILE", function()
      local env = util.clean_env {
        OPENAI_API_KEY = KEY, OPENAI_BASE_URL = front.url .. "/v1", SSL_CERT_FILE = good.cert,
        CURL_CA_BUNDLE = false, SSL_CERT_DIR = false,
      }
      local out, code = util.run_lua(([[
        local openai = require("openai")
        local client = openai.new { ca_file = %q, max_retries = 0 }
        local cc, err = client.chat.completions.retrieve("chatcmpl-abc123")
        io.write(cc and ("ok " .. cc.id .. " " .. openai.json.encode(cc.seed)) or tostring(err))
      ]]):format(other.cert), env)
      assert.are.same({ REFUSED, 0 }, { out, code })
    end)
  end)
end)
