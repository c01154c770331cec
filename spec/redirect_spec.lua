-- Redirects are never followed (libcurl's FOLLOWLOCATION stays off): a 3xx
-- is returned as an error object, and the target of its Location never sees
-- a request, so the API key, organization and project stay with the server
-- they were meant for. Two mocks on two loopback ports: A answers with the
-- redirect, B is where it points.
local openai = require("openai")
local mock = require("spec.helpers.mock")

local KEY = "sk-test-redirect-0123456789"
local ORG = "org-redirect"
local PROJECT = "proj_redirect"

describe("redirects", function()
  local a, b, client

  setup(function()
    a = mock.start { api_key = KEY }
    b = mock.start { api_key = KEY }
  end)
  teardown(function()
    if client then client:close() end
    a:stop()
    b:stop()
  end)
  before_each(function()
    a:reset()
    b:reset()
    if client then client:close() end
    client = openai.new { api_key = KEY, base_url = a.base_url, organization = ORG, project = PROJECT, max_retries = 2 }
  end)

  local function target_on_b(path)
    return b.base_url .. path
  end

  -- Nothing reached B; every request A logged carried the credentials.
  local function assert_only_a(expected_requests)
    assert.are.same({ requests = 0, connections = 0 }, b:stats())
    assert.are.same({}, b:requests())
    local requests = a:requests()
    assert.are.equal(expected_requests, #requests)
    for _, req in ipairs(requests) do
      assert.are.equal("Bearer " .. KEY, a:header(req, "authorization"))
      assert.are.equal(ORG, a:header(req, "openai-organization"))
      assert.are.equal(PROJECT, a:header(req, "openai-project"))
    end
  end

  local function error_fields(err)
    local fields = {}
    for k, v in pairs(err) do fields[k] = v end
    return fields
  end

  for _, status in ipairs { 301, 302, 303, 307, 308 } do
    it(("returns a %d without a body as an APIError and does not follow it"):format(status), function()
      local location = target_on_b("/chat/completions/chatcmpl-abc123")
      a:script { { status = status, headers = { location = location } } }
      local cc, err = client.chat.completions.retrieve("chatcmpl-abc123")
      assert.is_nil(cc)
      local request_id = err.request_id
      assert.matches("^req_%x+$", request_id)
      assert.are.same({
        name = "APIError",
        status = status,
        message = status .. " status code (no body)",
        request_id = request_id,
        headers = { location = location, ["content-length"] = "0", ["x-request-id"] = request_id },
        body = "",
      }, error_fields(err))
      assert.are.equal("APIError: " .. status .. " status code (no body) [request " .. request_id .. "]", tostring(err))
      assert.is_false(err:is("APIConnectionError"))
      assert_only_a(1) -- and a 3xx is not retried
    end)
  end

  it("uses a text body as the message", function()
    local location = target_on_b("/chat/completions/chatcmpl-abc123")
    a:script { { status = 302, headers = { location = location, ["content-type"] = "text/plain" }, body = "Found. Redirecting" } }
    local _, err = client.chat.completions.retrieve("chatcmpl-abc123")
    assert.are.equal("APIError", err.name)
    assert.are.equal(302, err.status)
    assert.are.equal("302 Found. Redirecting", err.message)
    assert.are.equal("Found. Redirecting", err.body)
    assert.are.equal(location, err.headers.location)
    assert_only_a(1)
  end)

  it("uses a JSON error body like any other status", function()
    a:script { { status = 307, headers = { location = target_on_b("/chat/completions") },
                 json = { error = { message = "moved", type = "redirect", param = openai.null, code = "moved" } } } }
    local _, err = client.chat.completions.create { model = "m", messages = { { role = "user", content = "hi" } } }
    assert.are.equal("APIError", err.name)
    assert.are.equal(307, err.status)
    assert.are.equal("307 moved", err.message)
    assert.are.equal("redirect", err.type)
    assert.are.equal("moved", err.code)
    assert.is_nil(err.param)
    -- the POST body was sent once, to A only
    assert_only_a(1)
    assert.are.equal('{"messages":[{"content":"hi","role":"user"}],"model":"m"}', a:requests()[1].body)
  end)

  it("does not follow a 308 for a POST, nor a relative Location back to A", function()
    a:script { { status = 308, headers = { location = "/v1/chat/completions/chatcmpl-abc123" } } }
    local _, err = client.chat.completions.update("chatcmpl-abc123", { metadata = { k = "v" } })
    assert.are.equal(308, err.status)
    assert.are.equal("308 status code (no body)", err.message)
    assert_only_a(1)
  end)

  it("retries a 3xx only when x-should-retry says so, and never follows it", function()
    local location = target_on_b("/chat/completions/chatcmpl-abc123")
    local redirect = { status = 302, headers = { location = location, ["x-should-retry"] = "true", ["retry-after-ms"] = "0" } }
    a:script { redirect, redirect, redirect }
    local _, err = client.chat.completions.retrieve("chatcmpl-abc123")
    assert.are.equal("302 status code (no body)", err.message)
    assert_only_a(3)
  end)

  it("does not follow a redirect answering a streaming request", function()
    local location = target_on_b("/chat/completions")
    a:script { { status = 302, headers = { location = location } } }
    local stream, err = client.chat.completions.create { model = "m", messages = { { role = "user", content = "hi" } }, stream = true }
    assert.is_nil(stream)
    assert.are.equal("APIError", err.name)
    assert.are.equal("302 status code (no body)", err.message)
    assert.are.equal(location, err.headers.location)
    assert_only_a(1)
  end)

  it("the client works on after a redirect", function()
    a:script { { status = 301, headers = { location = target_on_b("/chat/completions/chatcmpl-abc123") } } }
    assert.is_nil((client.chat.completions.retrieve("chatcmpl-abc123")))
    local cc = assert(client.chat.completions.retrieve("chatcmpl-abc123"))
    assert.are.equal("chatcmpl-abc123", cc.id)
    assert_only_a(2)
  end)
end)
