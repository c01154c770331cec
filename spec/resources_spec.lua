-- create, update, delete, list and messages.list against the stateful mock.
local openai = require("openai")
local mock = require("spec.helpers.mock")
local util = require("spec.helpers.util")

local SEED = "4944116822809979520"

local KEY = "sk-test-resources-0123456789"

describe("chat.completions resource", function()
  local server, client
  local session = mock.session({ api_key = KEY }, { max_retries = 0 }, function(s, c) server, client = s, c end)
  setup(session.setup)
  teardown(session.teardown)
  before_each(session.before_each)

  local function last_request()
    local log = server:requests()
    return log[#log]
  end

  local function create(content, extra)
    local params = { model = "gpt-4o-mini", store = true, messages = { { role = "user", content = content } } }
    for k, v in pairs(extra or {}) do params[k] = v end
    return assert(client.chat.completions.create(params))
  end

  describe("create", function()
    it("sends the params as exact JSON and returns the mirrored completion", function()
      local cc = assert(client.chat.completions.create {
        model = "gpt-4o-mini", store = true, metadata = { topic = "poems" }, seed = openai.int64(SEED),
        temperature = 1.0, messages = { { role = "user", content = "Write a haiku" } },
      })
      local req = last_request()
      assert.are.equal("POST", req.method)
      assert.are.equal("/v1/chat/completions", req.target)
      assert.are.equal("application/json", server:header(req, "content-type"))
      assert.are.equal("application/json", server:header(req, "accept"))
      assert.are.equal('{"messages":[{"content":"Write a haiku","role":"user"}],"metadata":{"topic":"poems"},'
        -- 1.0 is the number 1 where numbers have no float subtype
        .. '"model":"gpt-4o-mini","seed":4944116822809979520,"store":true,"temperature":'
        .. (util.has_integers and "1.0" or "1") .. "}", req.body)
      assert.are.equal("chatcmpl-mock1", cc.id)
      assert.are.equal("chat.completion", cc.object)
      assert.are.equal("gpt-4o-mini", cc.model)
      assert.are.equal(openai.int64(SEED), cc.seed)
      assert.are.equal(SEED, util.integer_text(cc.seed))
      assert.are.equal("Echo: Write a haiku", cc.choices[1].message.content)
      assert.are.equal(openai.null, cc.choices[1].message.refusal)
      assert.are.same({ topic = "poems" }, cc.metadata)
      assert.matches("^req_%x+$", cc._request_id)
    end)

    it("keeps nested tools and response_format schemas intact", function()
      local tools = openai.array {
        {
          type = "function",
          ["function"] = {
            name = "get_weather", strict = true,
            parameters = {
              type = "object",
              properties = { city = { type = "string" }, days = { type = "integer", minimum = 1, maximum = 14 } },
              required = openai.array { "city" },
              additionalProperties = false,
            },
          },
        },
      }
      local response_format = {
        type = "json_schema",
        json_schema = { name = "answer", schema = { type = "object", properties = {}, required = openai.array() } },
      }
      assert(client.chat.completions.create {
        model = "m", messages = { { role = "user", content = "hi" } }, tools = tools, response_format = response_format,
        tool_choice = "auto", stop = openai.array(), logit_bias = { ["50256"] = -100 },
      })
      local body = last_request().body
      assert.truthy(body:find('"required":["city"]', 1, true))
      assert.truthy(body:find('"properties":{},"required":[]', 1, true))
      assert.truthy(body:find('"stop":[]', 1, true))
      assert.truthy(body:find('"logit_bias":{"50256":-100}', 1, true))
      local sent = openai.json.decode(body)
      assert.are.same(tools, sent.tools)
      assert.are.same(response_format, sent.response_format)
    end)

    it("sends array content parts", function()
      local cc = assert(client.chat.completions.create {
        model = "m",
        messages = { { role = "user", content = { { type = "text", text = "two" }, { type = "text", text = " parts" } } } },
      })
      assert.are.equal("Echo: two parts", cc.choices[1].message.content)
    end)

    it("returns BadRequestError from the server", function()
      local cc, err = client.chat.completions.create { messages = { { role = "user", content = "x" } } }
      assert.is_nil(cc)
      assert.are.equal("BadRequestError", err.name)
      assert.are.equal("400 you must provide a model parameter", err.message)
    end)

    it("raises for params that are not a table or cannot be encoded, before any request", function()
      assert.has_error(function() client.chat.completions.create("hi") end,
        "bad argument #1 to 'chat.completions.create' (params must be a table)")
      local ok, err = pcall(client.chat.completions.create, { model = "m", messages = { { content = print } } })
      assert.is_false(ok)
      assert.are.equal("bad argument #1 to 'chat.completions.create' (cannot encode the request body: cannot encode function at messages[1].content)",
        err)
      ok, err = pcall(client.chat.completions.create, { model = "m", temperature = 0 / 0 })
      assert.is_false(ok)
      assert.matches("^bad argument #1 to 'chat.completions.create' %(cannot encode the request body: .*NaN or infinity", err)
      ok, err = pcall(client.chat.completions.create, { model = "m", messages = { [1] = "a", [3] = "c" } })
      assert.is_false(ok)
      assert.matches("^bad argument #1 to 'chat.completions.create' %(cannot encode the request body: .*sparse array", err)
      assert.are.equal(0, server:stats().requests)
    end)

    it("names the options argument for a problem in the options, and the params for one in the body", function()
      local params = { model = "m", messages = { { content = print } } }
      local ok, err = pcall(client.chat.completions.create, params, { timeout = "5" })
      assert.is_false(ok)
      assert.are.equal("bad argument #2 to 'chat.completions.create' (timeout must be a positive number of seconds)", err)
      ok, err = pcall(client.chat.completions.create, { model = "m" }, { query = { x = print } })
      assert.is_false(ok)
      assert.are.equal("bad argument #2 to 'chat.completions.create' (query parameter 'x' cannot be a function)", err)
      assert.are.equal(0, server:stats().requests)
    end)
  end)

  describe("update", function()
    it("replaces the metadata", function()
      local cc = create("to update", { metadata = { topic = "poems" } })
      local updated = assert(client.chat.completions.update(cc.id, { metadata = { topic = "haiku" } }))
      local req = last_request()
      assert.are.equal("POST", req.method)
      assert.are.equal("/v1/chat/completions/" .. cc.id, req.target)
      assert.are.equal('{"metadata":{"topic":"haiku"}}', req.body)
      assert.are.same({ topic = "haiku" }, updated.metadata)
      assert.are.same({ topic = "haiku" }, assert(client.chat.completions.retrieve(cc.id)).metadata)
    end)

    it("sends openai.null as null", function()
      local cc = create("to clear", { metadata = { a = "b" } })
      local updated = assert(client.chat.completions.update(cc.id, { metadata = openai.null }))
      assert.are.equal('{"metadata":null}', last_request().body)
      assert.are.equal(openai.null, updated.metadata)
    end)

    it("checks its arguments", function()
      assert.has_error(function() client.chat.completions.update("x") end,
        "bad argument #2 to 'chat.completions.update' (params must be a table)")
      assert.has_error(function() client.chat.completions.update("..", {}) end,
        "bad argument #1 to 'chat.completions.update' (completion_id \"..\" can't be safely passed as a path parameter)")
      local ok, err = pcall(client.chat.completions.update, "chatcmpl-x", { metadata = { topic = print } })
      assert.is_false(ok)
      assert.are.equal("bad argument #2 to 'chat.completions.update' (cannot encode the request body: cannot encode function at metadata.topic)",
        err)
      ok, err = pcall(client.chat.completions.update, "chatcmpl-x", { metadata = {} }, { headers = 1 })
      assert.is_false(ok)
      assert.are.equal("bad argument #3 to 'chat.completions.update' (headers must be a table)", err)
      local completions = client.chat.completions
      ok, err = pcall(completions.update, completions, "chatcmpl-x", { metadata = { [true] = 1 } })
      assert.is_false(ok)
      assert.matches("^bad argument #2 to 'chat.completions.update' %(cannot encode the request body: ", err)
      assert.are.equal(0, server:stats().requests)
    end)

    it("returns NotFoundError for an unknown id", function()
      local _, err = client.chat.completions.update("chatcmpl-nope", { metadata = {} })
      assert.are.equal("NotFoundError", err.name)
    end)
  end)

  describe("delete", function()
    it("deletes and returns the deletion object", function()
      local cc = create("to delete")
      local deleted = assert(client.chat.completions.delete(cc.id))
      local req = last_request()
      assert.are.equal("DELETE", req.method)
      assert.are.equal("/v1/chat/completions/" .. cc.id, req.target)
      assert.are.equal("", req.body)
      assert.is_nil(server:header(req, "content-type"))
      assert.are.same({ object = "chat.completion.deleted", id = cc.id, deleted = true }, deleted)
      assert.is_true(deleted.deleted)
      local _, err = client.chat.completions.retrieve(cc.id)
      assert.are.equal("NotFoundError", err.name)
    end)
  end)

  describe("list", function()
    it("encodes its query as the official SDKs do", function()
      local page = assert(client.chat.completions.list {
        after = "chatcmpl-x y", limit = 2, order = "desc", model = "gpt-4o", metadata = { topic = "a b", ["k[1]"] = "v" },
      })
      assert.are.equal("/v1/chat/completions?after=chatcmpl-x%20y&limit=2&metadata%5Bk%5B1%5D%5D=v"
        .. "&metadata%5Btopic%5D=a%20b&model=gpt-4o&order=desc", last_request().target)
      assert.are.equal("list", page.object)
    end)

    it("sends no query when none is given", function()
      assert(client.chat.completions.list())
      assert.are.equal("/v1/chat/completions", last_request().target)
    end)

    it("walks three pages and more, keeping the query", function()
      for i = 1, 5 do create("item " .. i, { metadata = { batch = "b1" } }) end
      create("other", { metadata = { batch = "b2" } })
      local page = assert(client.chat.completions.list { limit = 2, metadata = { batch = "b1" } })
      local ids = {}
      local pages = 0
      while true do
        pages = pages + 1
        assert.are.equal("list", page.object)
        for _, item in ipairs(page.data) do ids[#ids + 1] = item.id end
        if not page:has_next_page() then break end
        local last = page.data[#page.data].id
        page = assert(page:next_page())
        assert.are.equal("/v1/chat/completions?after=" .. last .. "&limit=2&metadata%5Bbatch%5D=b1", last_request().target)
      end
      assert.are.equal(3, pages)
      assert.are.same({ "chatcmpl-mock1", "chatcmpl-mock2", "chatcmpl-mock3", "chatcmpl-mock4", "chatcmpl-mock5" }, ids)
      assert.is_false(page.has_more)
      assert.has_error(function() page:next_page() end,
        "No next page expected; please check :has_next_page() before calling :next_page()")
    end)

    it("iterates every item across pages with iter()", function()
      for i = 1, 5 do create("item " .. i, { metadata = { batch = "it" } }) end
      local ids = {}
      for item in assert(client.chat.completions.list { limit = 2, order = "desc", metadata = { batch = "it" } }):iter() do
        ids[#ids + 1] = item.id
      end
      assert.are.same({ "chatcmpl-mock5", "chatcmpl-mock4", "chatcmpl-mock3", "chatcmpl-mock2", "chatcmpl-mock1" }, ids)
      assert.are.equal(3, server:stats().requests - 5) -- three pages
    end)

    it("filters by model", function()
      create("a", { model = "model-a" })
      create("b", { model = "model-b" })
      local page = assert(client.chat.completions.list { model = "model-b" })
      assert.are.equal(1, #page.data)
      assert.are.equal("model-b", page.data[1].model)
    end)

    it("pairs() shows only the list object's members", function()
      local page = assert(client.chat.completions.list { limit = 1 })
      local names = {}
      for name in pairs(page) do names[#names + 1] = name end
      table.sort(names)
      assert.are.same({ "data", "first_id", "has_more", "last_id", "object" }, names)
      assert.matches("^req_%x+$", page._request_id)
    end)

    it("raises the error object when a later page fails during iter()", function()
      for i = 1, 3 do create("item " .. i, { metadata = { batch = "fail" } }) end
      local page = assert(client.chat.completions.list { limit = 2, metadata = { batch = "fail" } })
      server:script { { status = 500, json = { error = { message = "boom" } } } }
      local seen = 0
      local ok, err = pcall(function()
        for _ in page:iter() do seen = seen + 1 end
      end)
      assert.is_false(ok)
      assert.are.equal(2, seen)
      assert.are.equal("InternalServerError", err.name)
      assert.are.equal("500 boom", err.message)
    end)

    it("has no next page when data is empty or has_more is false", function()
      server:script { { status = 200, json = { object = "list", data = openai.array(), has_more = true, first_id = openai.null, last_id = openai.null } } }
      local page = assert(client.chat.completions.list())
      assert.is_false(page:has_next_page())
      server:script { { status = 200, json = { object = "list", data = { { id = "a" } }, has_more = false } } }
      assert.is_false(assert(client.chat.completions.list()):has_next_page())
    end)

    it("checks its arguments", function()
      assert.has_error(function() client.chat.completions.list("limit=2") end,
        "bad argument #1 to 'chat.completions.list' (query must be a table)")
      assert.has_error(function() client.chat.completions.list({ limit = print }) end,
        "bad argument #2 to 'chat.completions.list' (query parameter 'limit' cannot be a function)")
    end)
  end)

  describe("messages.list", function()
    it("lists the stored messages of a completion", function()
      local cc = assert(client.chat.completions.create {
        model = "m", store = true,
        messages = { { role = "system", content = "Be brief." }, { role = "user", content = "Hi" } },
      })
      local page = assert(client.chat.completions.messages.list(cc.id, { order = "asc" }))
      assert.are.equal("/v1/chat/completions/" .. cc.id .. "/messages?order=asc", last_request().target)
      assert.are.equal(2, #page.data)
      assert.are.equal(cc.id .. "-0", page.data[1].id)
      assert.are.equal("system", page.data[1].role)
      assert.are.equal("Be brief.", page.data[1].content)
      assert.are.equal("Hi", page.data[2].content)
      local desc = assert(client.chat.completions.messages:list(cc.id, { order = "desc", limit = 1 }))
      assert.are.equal(cc.id .. "-1", desc.data[1].id)
      local rest = assert(desc:next_page())
      assert.are.equal("/v1/chat/completions/" .. cc.id .. "/messages?after=" .. cc.id .. "-1&limit=1&order=desc",
        last_request().target)
      assert.are.equal(cc.id .. "-0", rest.data[1].id)
    end)

    it("returns NotFoundError for an unknown completion", function()
      local _, err = client.chat.completions.messages.list("chatcmpl-nope")
      assert.are.equal("NotFoundError", err.name)
    end)
  end)

  it("round-trips create, retrieve, update, list, messages and delete", function()
    local cc = create("Write a haiku", { metadata = { topic = "poems" }, seed = openai.int64(SEED) })
    local got = assert(client.chat.completions.retrieve(cc.id))
    assert.are.equal(openai.int64(SEED), got.seed)
    assert.are.equal(SEED, util.integer_text(got.seed))
    assert(client.chat.completions.update(cc.id, { metadata = { topic = "haiku-round-trip" } }))
    local found = {}
    for item in assert(client.chat.completions.list { limit = 20, metadata = { topic = "haiku-round-trip" } }):iter() do
      found[#found + 1] = item.id
    end
    assert.are.same({ cc.id }, found)
    local messages = assert(client.chat.completions.messages.list(cc.id))
    assert.are.equal("Write a haiku", messages.data[1].content)
    assert.is_true(assert(client.chat.completions.delete(cc.id)).deleted)
    local _, err = client.chat.completions.retrieve(cc.id)
    assert.are.equal("NotFoundError", err.name)
    assert.are.same({ requests = 7, connections = 1 }, server:stats())
  end)
end)
