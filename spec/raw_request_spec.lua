-- client:request, for any endpoint, and with_response, for a call's status
-- and headers beside its result: through the same pipeline as the declared
-- methods, blocking and inside tasks.
local openai = require("openai")
local tasks = require("openai.tasks")
local mock = require("spec.helpers.mock")
local util = require("spec.helpers.util")
local cjson = require("cjson")

local KEY = "sk-test-raw-0123456789"

-- Every byte value, twice: what a binary answer (speech audio, say) holds.
local BYTES = {}
for i = 0, 255 do BYTES[#BYTES + 1] = string.char(i) end
BYTES = table.concat(BYTES):rep(2)

describe("client:request", function()
  local server, client
  local session = mock.session({ api_key = KEY }, { max_retries = 0 }, function(s, c) server, client = s, c end)
  setup(session.setup)
  teardown(session.teardown)
  before_each(session.before_each)

  local EMBEDDING = { object = "list", data = { { object = "embedding", index = 0, embedding = { 0.5, -0.25 } } },
                      model = "text-embedding-3-small", usage = { prompt_tokens = 2, total_tokens = 2 } }

  -- The same calls blocking and inside a task (the task's transfers take
  -- another way through the C core).
  for _, how in ipairs { "blocking", "in a task" } do
    local function run(fn)
      if how == "blocking" then return fn() end
      return tasks.run(fn)
    end

    describe(how, function()
      it("sends a JSON body to any path and returns the decoded JSON, with its request id", function()
        server:script { { status = 200, json = EMBEDDING, headers = { ["x-request-id"] = "req_emb" } } }
        local result = run(function()
          return assert(client:request { method = "POST", path = "/embeddings", query = { dry = true },
            body = { model = "text-embedding-3-small", input = "hi" } })
        end)
        assert.are.same({ 0.5, -0.25 }, { result.data[1].embedding[1], result.data[1].embedding[2] })
        assert.are.equal("req_emb", result._request_id)
        local req = server:requests()[1]
        assert.are.same({ "POST", "/v1/embeddings", "dry=true" }, { req.method, req.path, req.query })
        assert.are.same({ model = "text-embedding-3-small", input = "hi" }, cjson.decode(req.body))
        assert.are.equal("Bearer " .. KEY, server:header(req, "authorization"))
        assert.are.equal("0", server:header(req, "x-stainless-retry-count"))
      end)

      it("raw = true returns status, headers and the body as it came: every byte", function()
        server:script { { status = 200, body = BYTES, headers = { ["content-type"] = "audio/mpeg" } } }
        local result = run(function()
          return assert(client.request { method = "POST", path = "/audio/speech", raw = true,
            body = { model = "tts-1", input = "hi", voice = "alloy" } })
        end)
        assert.are.equal(200, result.status)
        assert.are.equal("audio/mpeg", result.headers["content-type"])
        assert.are.equal(512, #result.body)
        assert.is_true(result.body == BYTES)
      end)

      it("raw = true still makes an error status an error object, with the fields of its JSON", function()
        server:script { { status = 404, json = { error = { message = "Unknown model", type = "invalid_request_error",
                                                          code = "model_not_found" } } } }
        local result, err = run(function()
          return client:request { method = "GET", path = "/models/nope", raw = true }
        end)
        assert.is_nil(result)
        assert.are.same({ "NotFoundError", 404, "model_not_found", "404 Unknown model" },
          { err.name, err.status, err.code, err.message })
      end)

      it("with_response gives the status and headers as a third value; errors stay nil, err", function()
        server:script { { status = 200, json = EMBEDDING, headers = { ["x-ratelimit-remaining-requests"] = "59" } },
                        { status = 429, json = { error = { message = "slow down" } } } }
        local got = run(function()
          return util.pack(client.chat.completions.retrieve("chatcmpl-abc123", { with_response = true }))
        end)
        assert.are.equal(3, got.n)
        assert.is_nil(got[2])
        assert.are.equal("list", got[1].object)
        assert.are.same({ 200, "59" }, { got[3].status, got[3].headers["x-ratelimit-remaining-requests"] })
        local failed = run(function()
          return util.pack(client:request { method = "GET", path = "/models", with_response = true })
        end)
        assert.are.same({ 2, nil, "RateLimitError" }, { failed.n, failed[1], failed[2].name })
      end)
    end)
  end

  it("stream = true gives a stream of the decoded events (its final() raises: read the events)", function()
    server:script { { status = 200, headers = { ["content-type"] = "text/event-stream" }, sse_end = "finish",
                      sse = { 'data: {"n":1}\n\n', 'event: tick\ndata: {"n":2}\n\n', "data: [DONE]\n\n" } },
                    { status = 200, headers = { ["content-type"] = "text/event-stream" }, sse_end = "finish",
                      sse = { "data: [DONE]\n\n" } } }
    local stream = assert(client:request { method = "POST", path = "/anything", body = { x = 1 }, stream = true })
    assert.matches("^openai%.Stream %(open%)$", tostring(stream))
    assert.are.same({ n = 1 }, assert(stream:next()))
    assert.are.same({ n = 2 }, assert(stream:next()))
    assert.are.same({ nil, nil }, { stream:next() }) -- the end: [DONE]
    local req = server:requests()[1]
    assert.are.equal("text/event-stream", server:header(req, "accept"))
    assert.are.same({ x = 1 }, cjson.decode(req.body)) -- the body as given: no stream member added
    local again = assert(client:request { method = "GET", path = "/anything", stream = true })
    assert.has_error(function() again:final() end,
      "a stream from client:request has no final object: read its events with next()")
  end)

  it("a string body goes as it is, as application/octet-stream unless the headers say otherwise", function()
    server:script { { status = 200, json = { ok = true } }, { status = 200, json = { ok = true } } }
    assert(client:request { method = "POST", path = "/uploads/x/parts", body = BYTES })
    assert(client:request { method = "PUT", path = "/files/x", body = "a,b\n", headers = { ["Content-Type"] = "text/csv" } })
    local log = server:requests()
    assert.is_true(log[1].body == BYTES)
    assert.are.equal("application/octet-stream", server:header(log[1], "content-type"))
    assert.are.same({ "PUT", "a,b\n", "text/csv" }, { log[2].method, log[2].body, server:header(log[2], "content-type") })
  end)

  it("retries as every call does", function()
    server:script { { status = 500, json = { error = { message = "boom" } }, headers = { ["retry-after-ms"] = "10" } },
                    { status = 200, json = { ok = true } } }
    local retrying = openai.new { api_key = KEY, base_url = server.base_url, max_retries = 1 }
    local result = assert(retrying:request { method = "GET", path = "/models", raw = true })
    retrying:close()
    assert.are.same({ 200, '{"ok":true}' }, { result.status, result.body })
    local log = server:requests()
    assert.are.same({ "0", "1" }, { server:header(log[1], "x-stainless-retry-count"),
      server:header(log[2], "x-stainless-retry-count") })
  end)

  it("refuses a request it cannot send, before sending anything", function()
    for _, case in ipairs {
      { nil, "request must be a table" },
      { { method = "post", path = "/x" }, 'method must be an HTTP method in capitals, such as "POST"' },
      { { method = "GET", path = "x" }, 'path must be a string starting with "/" (relative to the base URL)' },
      { { method = "GET", path = "/x", bogus = 1 }, "unknown field 'bogus'" },
      { { method = "GET", path = "/x", body = 5 }, "body must be a table (sent as JSON) or a string (sent as it is)" },
      { { method = "GET", path = "/x", stream = true, raw = true }, "stream and raw cannot both be true" },
      { { method = "GET", path = "/x", raw = "yes" }, "raw must be a boolean" },
      { { method = "GET", path = "/x", timeout = -1 }, "timeout must be a positive number of seconds" },
    } do
      assert.has_error(function() client:request(case[1]) end, "bad argument #1 to 'request' (" .. case[2] .. ")")
    end
    assert.are.equal(0, #server:requests())
  end)
end)
