-- The Conversations API's methods: paths, bodies, pages, against scripted
-- answers of the mock.
local mock = require("spec.helpers.mock")
local cjson = require("cjson")

local KEY = "sk-test-conversations-0123456789"

describe("conversations", function()
  local server, client
  local session = mock.session({ api_key = KEY }, { max_retries = 0 }, function(s, c) server, client = s, c end)
  setup(session.setup)
  teardown(session.teardown)
  before_each(session.before_each)

  local CONVERSATION = { id = "conv_1", object = "conversation", created_at = 1741900000, metadata = { topic = "demo" } }

  it("create without params sends an empty object, as the official SDKs do", function()
    server:script { { status = 200, json = CONVERSATION } }
    local conversation = assert(client.conversations.create())
    assert.are.same({ "conv_1", "demo" }, { conversation.id, conversation.metadata.topic })
    local req = server:requests()[1]
    assert.are.same({ "POST", "/v1/conversations", "{}" }, { req.method, req.path, req.body })
    assert.are.equal("application/json", server:header(req, "content-type"))
  end)

  it("create, retrieve, update and delete go to their routes with their bodies", function()
    server:script { { status = 200, json = CONVERSATION }, { status = 200, json = CONVERSATION },
                    { status = 200, json = CONVERSATION },
                    { status = 200, json = { id = "conv_1", object = "conversation.deleted", deleted = true } } }
    local items = { { type = "message", role = "user", content = "hello" } }
    assert(client.conversations.create({ items = items, metadata = { topic = "demo" } }))
    assert(client.conversations.retrieve("conv_1"))
    assert(client.conversations.update("conv_1", { metadata = { topic = "other" } }))
    local deleted = assert(client.conversations.delete("conv_1"))
    assert.are.same({ "conversation.deleted", true }, { deleted.object, deleted.deleted })
    local routes = {}
    for i, req in ipairs(server:requests()) do routes[i] = req.method .. " " .. req.path end
    assert.are.same({ "POST /v1/conversations", "GET /v1/conversations/conv_1", "POST /v1/conversations/conv_1",
      "DELETE /v1/conversations/conv_1" }, routes)
    local log = server:requests()
    assert.are.same({ items = items, metadata = { topic = "demo" } }, cjson.decode(log[1].body))
    assert.are.same({ metadata = { topic = "other" } }, cjson.decode(log[3].body))
  end)

  it("items: create, a list page and the next, retrieve and delete by two ids (each encoded)", function()
    local page1 = { object = "list", data = { { id = "msg_2", type = "message" } }, first_id = "msg_2",
                    last_id = "msg_2", has_more = true }
    local page2 = { object = "list", data = { { id = "msg_1", type = "message" } }, first_id = "msg_1",
                    last_id = "msg_1", has_more = false }
    server:script { { status = 200, json = page1 }, { status = 200, json = page1 }, { status = 200, json = page2 },
                    { status = 200, json = { id = "msg/1", type = "message" } }, { status = 200, json = CONVERSATION } }
    local added = assert(client.conversations.items.create("conv_1", { items = { { type = "message", role = "user",
      content = "hi" } } }, { query = { include = { "message.output_text.logprobs" } } }))
    assert.are.equal("msg_2", added.data[1].id)
    local seen = {}
    for item in assert(client.conversations.items.list("conv_1", { limit = 1 })):iter() do seen[#seen + 1] = item.id end
    assert.are.same({ "msg_2", "msg_1" }, seen)
    assert.are.equal("msg/1", assert(client.conversations.items.retrieve("conv_1", "msg/1")).id)
    assert.are.equal("conv_1", assert(client.conversations.items.delete("conv_1", "msg/1")).id)
    local log = server:requests()
    local targets = {}
    for i, req in ipairs(log) do targets[i] = req.method .. " " .. req.target end
    assert.are.same({
      "POST /v1/conversations/conv_1/items?include%5B%5D=message.output_text.logprobs",
      "GET /v1/conversations/conv_1/items?limit=1",
      "GET /v1/conversations/conv_1/items?after=msg_2&limit=1",
      "GET /v1/conversations/conv_1/items/msg%2F1",
      "DELETE /v1/conversations/conv_1/items/msg%2F1",
    }, targets)
  end)

  it("bad arguments raise before any request", function()
    assert.has_error(function() client.conversations.items.retrieve("conv_1") end,
      "bad argument #2 to 'conversations.items.retrieve' (item_id must be a non-empty string, got nil)")
    assert.has_error(function() client.conversations.create("x") end,
      "bad argument #1 to 'conversations.create' (params must be a table)")
    assert.are.equal(0, #server:requests())
  end)
end)
