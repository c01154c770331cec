-- Every kind of error: API errors by status, bodies that are not the
-- expected JSON, and failures without a response.
local assert = require("spec.contract.assert")
local outcome = require("spec.contract.outcome")

local function retrieve(client)
  return outcome.of(client.chat.completions.retrieve("chatcmpl-abc123"))
end

local cases = {}

local NAMES = {
  [400] = "BadRequestError", [401] = "AuthenticationError", [403] = "PermissionDeniedError",
  [404] = "NotFoundError", [409] = "ConflictError", [422] = "UnprocessableEntityError",
  [429] = "RateLimitError", [500] = "InternalServerError", [503] = "InternalServerError", [418] = "APIError",
}
for _, status in ipairs { 400, 401, 403, 404, 409, 422, 429, 500, 503, 418 } do
  cases[#cases + 1] = {
    name = ("status %d is %s with the body's fields"):format(status, NAMES[status]),
    script = { { status = status, headers = { ["x-request-id"] = "req_e" .. status, ["x-should-retry"] = "false" },
                 json = { error = { message = "m" .. status, type = "t", param = "p", code = "c" } } } },
    call = retrieve,
    check = function(result)
      assert.same({ name = NAMES[status], status = status, message = status .. " m" .. status, type = "t",
                    param = "p", code = "c", request_id = "req_e" .. status }, result.error)
    end,
  }
end

cases[#cases + 1] = {
  name = "an error body that is not JSON keeps its text in the message",
  script = { { status = 502, headers = { ["x-should-retry"] = "false", ["content-type"] = "text/html" },
               body = "<html>bad gateway</html>" } },
  call = retrieve,
  check = function(result)
    assert.equal("InternalServerError", result.error.name)
    assert.equal(502, result.error.status)
    assert.equal("502 <html>bad gateway</html>", result.error.message)
  end,
}

cases[#cases + 1] = {
  name = "a 2xx body that is not JSON is APIResponseValidationError",
  script = { { status = 200, body = "{\"id\": " } },
  call = retrieve,
  check = function(result)
    assert.equal("APIResponseValidationError", result.error.name)
    assert.equal(200, result.error.status)
    assert.matches("^200 response body is not valid JSON: ", result.error.message)
  end,
}

cases[#cases + 1] = {
  name = "an empty 2xx body is APIResponseValidationError",
  script = { { status = 200, body = "" } },
  call = retrieve,
  check = function(result)
    assert.equal("APIResponseValidationError", result.error.name)
    assert.equal("200 response body is empty", result.error.message)
  end,
}

cases[#cases + 1] = {
  name = "a body over max_response_bytes is APIConnectionError",
  client = { max_response_bytes = 100 },
  call = retrieve,
  check = function(result)
    assert.equal("APIConnectionError", result.error.name)
    assert.equal("response exceeds the limit of 100 bytes", result.error.cause)
  end,
}

cases[#cases + 1] = {
  name = "a body over max_response_values is APIResponseValidationError",
  client = { max_response_values = 5 },
  call = retrieve,
  check = function(result)
    assert.equal("APIResponseValidationError", result.error.name)
    assert.matches("^200 response body exceeds max_response_values: JSON has more than 5 values", result.error.message)
  end,
}

cases[#cases + 1] = {
  name = "a body cut short of its Content-Length is APIConnectionError",
  script = { { status = 200, json = { id = "chatcmpl-cut", object = "chat.completion" }, truncate = 10 } },
  call = retrieve,
  check = function(result)
    assert.equal("APIConnectionError", result.error.name)
    assert.equal("Connection error.", result.error.message)
  end,
}

cases[#cases + 1] = {
  name = "a connection reset before any byte is APIConnectionError",
  script = { { reset = true } },
  call = retrieve,
  check = function(result)
    assert.equal("APIConnectionError", result.error.name)
  end,
}

cases[#cases + 1] = {
  name = "nothing listening is APIConnectionError",
  client = function(env) return { base_url = env.closed_url } end,
  call = retrieve,
  check = function(result)
    assert.equal("APIConnectionError", result.error.name)
    assert.equal("Connection error.", result.error.message)
  end,
}

cases[#cases + 1] = {
  name = "a close-delimited body is read to the end",
  script = { { status = 200, json = { id = "chatcmpl-close", object = "chat.completion" }, no_content_length = true } },
  call = retrieve,
  check = function(result)
    assert.same({ id = "chatcmpl-close", object = "chat.completion" }, result.value)
  end,
}

return cases
