-- chat.completions.retrieve end to end against the mock, over real HTTP.
local openai = require("openai")
local mock = require("spec.helpers.mock")
local util = require("spec.helpers.util")

local KEY = "sk-test-retrieve-0123456789"

describe("chat.completions.retrieve", function()
  local server, client
  local session = mock.session({ api_key = KEY }, { max_retries = 0 }, function(s, c) server, client = s, c end)
  setup(session.setup)
  teardown(session.teardown)
  before_each(session.before_each)

  it("returns the seed's completion with every JSON member mirrored", function()
    local cc, err = client.chat.completions.retrieve("chatcmpl-abc123")
    assert.is_nil(err)
    assert.are.equal("chatcmpl-abc123", cc.id)
    assert.are.equal("chat.completion", cc.object)
    assert.are.equal("gpt-4o-2024-08-06", cc.model)
    assert.are.equal(1738960610, cc.created)
    assert.are.equal("1738960610", util.integer_text(cc.created))
    -- exact on every runtime (an integer, a boxed int64 or an int64 cdata)
    assert.are.equal(openai.int64("4944116822809979520"), cc.seed)
    assert.are.equal("4944116822809979520", util.integer_text(cc.seed))
    -- floats on 5.3+ (spec/lua53), numbers elsewhere
    assert.are.equal(util.has_integers and "float" or "number", util.number_kind(cc.temperature))
    assert.are.equal(1.0, cc.temperature)
    assert.are.equal(1.0, cc.top_p)
    assert.are.equal(util.has_integers and "float" or "number", util.number_kind(cc.presence_penalty))
    assert.are.equal(0.0, cc.frequency_penalty)
    assert.are.equal("req_ded8ab984ec4bf840f37566c1011c417", cc.request_id)
    assert.are.equal(openai.null, cc.tool_choice)
    assert.are.equal(openai.null, cc.input_user)
    assert.are.equal(openai.null, cc.tools)
    assert.are.equal(openai.null, cc.response_format)
    assert.are.equal("default", cc.service_tier)
    assert.are.equal("fp_50cad350e4", cc.system_fingerprint)
    assert.are.equal("table", type(cc.metadata))
    assert.is_nil(next(cc.metadata))
    assert.is_nil(getmetatable(cc.metadata))
    assert.are.same({ total_tokens = 31, completion_tokens = 18, prompt_tokens = 13 }, cc.usage)
    assert.are.equal(openai.array_mt, getmetatable(cc.choices))
    assert.are.equal(1, #cc.choices)
    local choice = cc.choices[1]
    assert.are.equal(0, choice.index)
    assert.are.equal("stop", choice.finish_reason)
    assert.are.equal(openai.null, choice.logprobs)
    assert.are.equal("assistant", choice.message.role)
    assert.are.equal("Mind of circuits hum, \nLearning patterns in silence\226\128\148 \nFuture's quiet spark.",
      choice.message.content)
    assert.are.equal(openai.null, choice.message.tool_calls)
    assert.are.equal(openai.null, choice.message.function_call)
  end)

  it("yields exactly the JSON members from pairs, nulls included", function()
    local cc = assert(client.chat.completions.retrieve("chatcmpl-abc123"))
    local names = {}
    for name in pairs(cc) do names[#names + 1] = name end
    table.sort(names)
    assert.are.same({
      "choices", "created", "frequency_penalty", "id", "input_user", "metadata", "model", "object",
      "presence_penalty", "request_id", "response_format", "seed", "service_tier", "system_fingerprint",
      "temperature", "tool_choice", "tools", "top_p", "usage",
    }, names)
  end)

  it("equals the fixture decoded, and encodes back to the same values", function()
    local fixture = util.read_file("spec/fixtures/chatcmpl-abc123.json")
    local cc = assert(client.chat.completions.retrieve("chatcmpl-abc123"))
    assert(util.same(openai.json.decode(fixture), cc))
    assert(util.same(cc, openai.json.decode(openai.json.encode(cc))))
  end)

  it("exposes the x-request-id header as _request_id, not as a member", function()
    server:script { { passthrough = true, headers = { ["x-request-id"] = "req_abc" } } }
    local cc = assert(client.chat.completions.retrieve("chatcmpl-abc123"))
    assert.are.equal("req_abc", cc._request_id)
    assert.is_nil(rawget(cc, "_request_id"))
  end)

  it("works with a colon call too", function()
    local cc = assert(client.chat.completions:retrieve("chatcmpl-abc123", { timeout = 5 }))
    assert.are.equal("chatcmpl-abc123", cc.id)
    assert.are.equal(1, server:stats().requests)
  end)

  it("reuses one connection for sequential calls", function()
    for _ = 1, 5 do assert(client.chat.completions.retrieve("chatcmpl-abc123")) end
    assert.are.same({ requests = 5, connections = 1 }, server:stats())
  end)

  it("sends GET to the completion's path with the documented headers", function()
    assert(client.chat.completions.retrieve("chatcmpl-abc123"))
    local req = server:requests()[1]
    assert.are.equal("GET", req.method)
    assert.are.equal("/v1/chat/completions/chatcmpl-abc123", req.target)
    assert.are.equal("", req.body)
    assert.are.equal("Bearer " .. KEY, server:header(req, "authorization"))
    assert.are.equal("application/json", server:header(req, "accept"))
    assert.are.equal("OpenAI/Lua " .. openai.VERSION, server:header(req, "user-agent"))
    assert.are.equal("0", server:header(req, "x-stainless-retry-count"))
    assert.are.equal("lua", server:header(req, "x-stainless-lang"))
    assert.are.equal(openai.VERSION, server:header(req, "x-stainless-package-version"))
    assert.is_nil(server:header(req, "content-type"))
    assert.is_nil(server:header(req, "openai-organization"))
    assert.is_nil(server:header(req, "openai-project"))
    assert.is_nil(server:header(req, "x-stainless-timeout"))
  end)

  it("returns NotFoundError for an unknown id", function()
    local cc, err = client.chat.completions.retrieve("chatcmpl-nope")
    assert.is_nil(cc)
    assert.are.equal("NotFoundError", err.name)
    assert.are.equal(404, err.status)
    assert.are.equal("404 No chat completion found with id 'chatcmpl-nope'.", err.message)
    assert.are.equal("invalid_request_error", err.type)
    assert.is_nil(err.code)
    assert.is_nil(err.param)
    assert.matches("^req_%x+$", err.request_id)
    assert.are.equal(err.request_id, err.headers["x-request-id"])
    assert.are.equal("No chat completion found with id 'chatcmpl-nope'.", err.body.error.message)
    assert.are.equal(openai.Error, getmetatable(err))
    assert.are.equal("NotFoundError: 404 No chat completion found with id 'chatcmpl-nope'. [request "
      .. err.request_id .. "]", tostring(err))
  end)
end)
