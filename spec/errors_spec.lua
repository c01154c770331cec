-- Every error kind of the contract, with its exact fields.
local openai = require("openai")
local mock = require("spec.helpers.mock")

local KEY = "sk-test-errors-0123456789"

describe("errors", function()
  local server, client
  local session = mock.session({ api_key = KEY }, { max_retries = 0 }, function(s, c) server, client = s, c end)
  setup(session.setup)
  teardown(session.teardown)
  before_each(session.before_each)

  local function fail_with(response)
    server:script { response }
    local cc, err = client.chat.completions.retrieve("chatcmpl-abc123")
    assert.is_nil(cc)
    return err
  end

  local NAMES = {
    [400] = "BadRequestError", [401] = "AuthenticationError", [403] = "PermissionDeniedError",
    [404] = "NotFoundError", [409] = "ConflictError", [422] = "UnprocessableEntityError",
    [429] = "RateLimitError", [500] = "InternalServerError", [502] = "InternalServerError",
    [503] = "InternalServerError", [418] = "APIError", [405] = "APIError", [302] = "APIError",
  }
  for status, name in pairs(NAMES) do
    it(("maps status %d to %s"):format(status, name), function()
      local err = fail_with {
        status = status,
        headers = { ["x-request-id"] = "req_" .. status },
        json = { error = { message = "went wrong", type = "some_type", param = "p", code = "c" } },
      }
      assert.are.equal(name, err.name)
      assert.are.equal(status, err.status)
      assert.are.equal(status .. " went wrong", err.message)
      assert.are.equal("some_type", err.type)
      assert.are.equal("p", err.param)
      assert.are.equal("c", err.code)
      assert.are.equal("req_" .. status, err.request_id)
      assert.are.equal("went wrong", err.error.message)
      assert.are.same({ error = { message = "went wrong", type = "some_type", param = "p", code = "c" } }, err.body)
      assert.is_true(err:is("APIError"))
      assert.are.equal(name .. ": " .. status .. " went wrong [request req_" .. status .. "]", tostring(err))
    end)
  end

  it("takes type, code and param as nil when they are JSON null", function()
    local err = fail_with { status = 400, json = { error = { message = "m", type = openai.null, param = openai.null, code = openai.null } } }
    assert.is_nil(err.type)
    assert.is_nil(err.param)
    assert.is_nil(err.code)
  end)

  it("uses a text body as the message", function()
    local err = fail_with { status = 404, headers = { ["content-type"] = "text/plain" }, body = "not found plain" }
    assert.are.equal("404 not found plain", err.message)
    assert.are.equal("not found plain", err.body)
    assert.is_nil(err.error)
  end)

  it("says 'status code (no body)' for an empty body", function()
    local err = fail_with { status = 404 }
    assert.are.equal("404 status code (no body)", err.message)
    assert.are.equal("", err.body)
  end)

  it("treats a JSON body without an error member as the error", function()
    local err = fail_with { status = 404, json = { message = "no error key" } }
    assert.are.equal("404 no error key", err.message)
    assert.are.same({ message = "no error key" }, err.error)
  end)

  it("encodes a message that is not a string", function()
    local err = fail_with { status = 400, json = { error = { message = { "a", "b" } } } }
    assert.are.equal('400 ["a","b"]', err.message)
  end)

  it("encodes the error object when it has no message", function()
    local err = fail_with { status = 400, json = { error = { code = "x" } } }
    assert.are.equal('400 {"code":"x"}', err.message)
    assert.are.equal("x", err.code)
  end)

  it("reports HTML error pages as text", function()
    local err = fail_with { status = 502, headers = { ["content-type"] = "text/html" }, body = "<html>\r\n<b>Bad gateway</b>\n</html>" }
    assert.are.equal("InternalServerError", err.name)
    assert.are.equal("502 <html>\r\n<b>Bad gateway</b>\n</html>", err.message)
    assert.are.equal("InternalServerError: 502 <html> <b>Bad gateway</b> </html> [request " .. err.request_id .. "]",
      tostring(err))
  end)

  it("lower-cases response header names", function()
    local err = fail_with { status = 400, headers = { ["X-Custom-Thing"] = "v" }, json = { error = { message = "m" } } }
    assert.are.equal("v", err.headers["x-custom-thing"])
    assert.are.equal("application/json", err.headers["content-type"])
  end)

  describe("APIResponseValidationError", function()
    it("for a 2xx body that is not JSON", function()
      local err = fail_with { status = 200, body = "<html>hi</html>" }
      assert.are.equal("APIResponseValidationError", err.name)
      assert.are.equal(200, err.status)
      assert.matches("^200 response body is not valid JSON: ", err.message)
      assert.are.equal("<html>hi</html>", err.body)
      assert.is_true(err:is("APIError"))
    end)
    it("for truncated JSON", function()
      local err = fail_with { status = 200, body = '{"id": "chatcmpl-abc123", "object": "chat' }
      assert.are.equal("APIResponseValidationError", err.name)
      assert.are.equal('{"id": "chatcmpl-abc123", "object": "chat', err.body)
    end)
    it("for an empty 200", function()
      local err = fail_with { status = 200 }
      assert.are.equal("APIResponseValidationError", err.name)
      assert.are.equal("200 response body is empty", err.message)
    end)
    it("for a 204", function()
      local err = fail_with { status = 204 }
      assert.are.equal("APIResponseValidationError", err.name)
      assert.are.equal("204 response body is empty", err.message)
    end)
    it("for JSON that is not an object", function()
      local err = fail_with { status = 200, body = "[1,2]" }
      assert.are.equal("200 response body is not a JSON object", err.message)
    end)
  end)

  it("returns APIConnectionError when nothing listens", function()
    local refused = openai.new { api_key = KEY, base_url = "http://127.0.0.1:" .. mock.free_port() .. "/v1", max_retries = 0 }
    local cc, err = refused.chat.completions.retrieve("chatcmpl-abc123")
    refused:close()
    assert.is_nil(cc)
    assert.are.equal("APIConnectionError", err.name)
    assert.are.equal("Connection error.", err.message)
    assert.is_nil(err.status)
    assert.matches("onnect", err.cause)
    assert.is_true(err:is("APIError"))
    assert.are.equal("APIConnectionError: Connection error. (" .. err.cause .. ")", tostring(err))
  end)

  it("returns APIConnectionError when the connection is reset before the headers", function()
    local err = fail_with { reset = true }
    assert.are.equal("APIConnectionError", err.name)
  end)

  it("returns APIConnectionError for a body cut short", function()
    local err = fail_with { status = 200, body = '{"id":"chatcmpl-abc123"}', truncate = 5 }
    assert.are.equal("APIConnectionError", err.name)
    assert.are.equal("Connection error.", err.message)
  end)

  it("returns APIConnectionTimeoutError when the headers are late", function()
    server:script { { delay_ms = 3000, passthrough = true } }
    local started = require("openai.core").monotonic()
    local cc, err = client.chat.completions.retrieve("chatcmpl-abc123", { timeout = 0.3 })
    local elapsed = require("openai.core").monotonic() - started
    assert.is_nil(cc)
    assert.are.equal("APIConnectionTimeoutError", err.name)
    assert.are.equal("Request timed out.", err.message)
    assert.is_true(err:is("APIConnectionError"))
    assert.is_true(elapsed >= 0.29 and elapsed < 2, "elapsed " .. elapsed)
  end)

  it("times out while the body is stalled: the timeout covers the body", function()
    server:script { { status = 200, body = '{"id":"chatcmpl-abc123","object":"chat.completion"}', split_at = 10, body_delay_ms = 3000 } }
    local started = require("openai.core").monotonic()
    local cc, err = client.chat.completions.retrieve("chatcmpl-abc123", { timeout = 0.4 })
    local elapsed = require("openai.core").monotonic() - started
    assert.is_nil(cc)
    assert.are.equal("APIConnectionTimeoutError", err.name)
    assert.is_true(elapsed >= 0.39 and elapsed < 2, "elapsed " .. elapsed)
  end)

  it("the same client succeeds again after each failure", function()
    fail_with { reset = true }
    fail_with { status = 500 }
    assert(client.chat.completions.retrieve("chatcmpl-abc123"))
  end)
end)
