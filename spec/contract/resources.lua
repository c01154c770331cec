-- Each method of chat.completions, stored completions and their pages.
local assert = require("spec.contract.assert")
local outcome = require("spec.contract.outcome")

local cases = {}

local function create(client, n, metadata)
  return client.chat.completions.create {
    model = "gpt-4o-mini", store = true, metadata = metadata,
    messages = { { role = "user", content = "message " .. n } },
  }
end

cases[#cases + 1] = {
  name = "create sends the JSON body and returns the completion",
  call = function(client)
    return outcome.of(create(client, 1, { topic = "contract" }))
  end,
  check = function(result, mock, h)
    assert.equal("chat.completion", result.value.object)
    assert.equal("gpt-4o-mini", result.value.model)
    assert.equal("assistant", result.value.choices[1].message.role)
    local req = mock:requests()[1]
    assert.equal("POST", req.method)
    assert.equal("/v1/chat/completions", req.target)
    assert.equal("application/json", mock:header(req, "content-type"))
    assert.same({ model = "gpt-4o-mini", store = true, metadata = { topic = "contract" },
                  messages = { { role = "user", content = "message 1" } } }, h.decode(req.body))
    assert.equal(tostring(#req.body), mock:header(req, "content-length"))
  end,
}

cases[#cases + 1] = {
  name = "update, retrieve and delete a stored completion",
  call = function(client)
    local made = assert(create(client, 1))
    local updated = outcome.of(client.chat.completions.update(made.id, { metadata = { tag = "x" } }))
    local deleted = outcome.of(client.chat.completions.delete(made.id))
    local gone = outcome.of(client.chat.completions.retrieve(made.id))
    return { id = made.id, updated = updated, deleted = deleted, gone = gone }
  end,
  check = function(result, mock)
    assert.same({ tag = "x" }, result.updated.value.metadata)
    assert.same({ object = "chat.completion.deleted", id = result.id, deleted = true }, result.deleted.value)
    assert.equal("NotFoundError", result.gone.error.name)
    local methods = {}
    for i, req in ipairs(mock:requests()) do methods[i] = req.method .. " " .. req.target end
    assert.same({
      "POST /v1/chat/completions",
      "POST /v1/chat/completions/" .. result.id,
      "DELETE /v1/chat/completions/" .. result.id,
      "GET /v1/chat/completions/" .. result.id,
    }, methods)
  end,
}

cases[#cases + 1] = {
  name = "list walks the pages with after = the last id",
  call = function(client)
    local ids = {}
    for n = 1, 3 do ids[n] = assert(create(client, n, { batch = "pages" })).id end
    local page = assert(client.chat.completions.list { limit = 2, metadata = { batch = "pages" } })
    local seen = {}
    for item in page:iter() do seen[#seen + 1] = item.id end
    return { ids = ids, seen = seen, first_has_more = page.has_more }
  end,
  check = function(result, mock)
    table.sort(result.ids)
    table.sort(result.seen)
    assert.same(result.ids, result.seen)
    assert.equal(true, result.first_has_more)
    local lists = {}
    for _, req in ipairs(mock:requests()) do
      if req.method == "GET" then lists[#lists + 1] = req.query end
    end
    assert.equal(2, #lists)
    assert.matches("^limit=2&metadata%%5Bbatch%%5D=pages$", lists[1])
    assert.matches("^after=[%w_-]+&limit=2&metadata%%5Bbatch%%5D=pages$", lists[2])
  end,
}

cases[#cases + 1] = {
  name = "messages.list returns a page of the stored messages",
  call = function(client)
    local made = assert(create(client, 7))
    return outcome.of(client.chat.completions.messages.list(made.id))
  end,
  check = function(result)
    assert.equal("list", result.value.object)
    assert.equal(1, #result.value.data)
    assert.equal("message 7", result.value.data[1].content)
    assert.equal(false, result.value.has_more)
  end,
}

return cases
