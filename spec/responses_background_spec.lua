-- Background responses against the mock's own state: a response that
-- progresses on its own, is cancelled, and whose events are read again
-- after a dropped stream (starting_after), through the client.
local openai = require("openai")
local mock = require("spec.helpers.mock")

local KEY = "sk-test-background-0123456789"

describe("background responses", function()
  local server, client
  local session = mock.session({ api_key = KEY }, { max_retries = 0 }, function(s, c) server, client = s, c end)
  setup(session.setup)
  teardown(session.teardown)
  before_each(session.before_each)

  local SLOW = { headers = { ["X-Mock-Background-Ms"] = "400" } }

  it("a background response starts queued and, retrieved again, ends completed", function()
    local r = assert(client.responses.create({ model = "gpt-4o-mini", input = "one two", background = true }, SLOW))
    assert.are.same({ "queued", true }, { r.status, r.background })
    local statuses, seen = {}, {}
    for _ = 1, 200 do
      local now = assert(client.responses.retrieve(r.id))
      if not seen[now.status] then
        seen[now.status] = true
        statuses[#statuses + 1] = now.status
      end
      if now.status == "completed" then
        assert.are.equal("Echo: one two", openai.output_text(now))
        break
      end
      require("openai.core").sleep(0.02)
    end
    assert.are.equal("completed", statuses[#statuses])
  end)

  it("cancel stops a background response; cancelling a finished one returns it unchanged", function()
    local r = assert(client.responses.create({ model = "m", input = "x", background = true },
      { headers = { ["X-Mock-Background-Ms"] = "5000" } }))
    local cancelled = assert(client.responses.cancel(r.id))
    assert.are.same({ r.id, "cancelled" }, { cancelled.id, cancelled.status })
    assert.are.equal("cancelled", assert(client.responses.retrieve(r.id)).status)
    local again = assert(client.responses.cancel(r.id))
    assert.are.equal("cancelled", again.status)
  end)

  it("a dropped stream is read again after the last sequence number seen, to the same final response", function()
    local stream = assert(client.responses.create({ model = "m", input = "alpha beta gamma", background = true,
      stream = true }, SLOW))
    local last, id
    for _ = 1, 3 do
      local event = assert(stream:next())
      last = event.sequence_number
      id = id or (event.response and event.response.id)
    end
    stream:close()
    local resumed = assert(client.responses.retrieve(id, { stream = true, starting_after = last }))
    local first = assert(resumed:next())
    assert.are.equal(last + 1, first.sequence_number)
    local numbers, previous = true, first.sequence_number
    while true do
      local event, err = resumed:next()
      assert.is_nil(err)
      if event == nil then break end
      numbers = numbers and event.sequence_number == previous + 1
      previous = event.sequence_number
    end
    assert.is_true(numbers)
    local final = assert(resumed:final())
    assert.are.same({ id, "completed", "Echo: alpha beta gamma" }, { final.id, final.status, openai.output_text(final) })
  end)

  it("an outcome of failed, streamed: final() gives the failed response in the error", function()
    local stream = assert(client.responses.create({ model = "m", input = "x y z", stream = true },
      { headers = { ["X-Mock-Response-Outcome"] = "failed" } }))
    local final, err = stream:final()
    assert.is_nil(final)
    assert.are.same({ "the response failed: mock failure", "failed" }, { err.message, err.response.status })
  end)
end)
