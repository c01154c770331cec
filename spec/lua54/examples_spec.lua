-- The Responses and Conversations examples (what `make demo` runs), run as
-- a user runs them against a mock of their own: their whole output
-- compared, request by request what the mock stored in between.
local mock = require("spec.helpers.mock")
local process = require("spec.helpers.process")

local KEY = "sk-test-examples-0123456789"

describe("examples", function()
  local server
  setup(function() server = mock.start { api_key = KEY } end)
  teardown(function() if server then server:stop() end end)
  before_each(function() server:reset() end)

  -- Runs `lua5.4 examples/<name> args...` with the mock as the API;
  -- returns stdout, the exit status and stderr.
  local function run(name, ...)
    local out, err = os.tmpname(), os.tmpname()
    local args = {}
    for i, value in ipairs { ... } do args[i] = process.shell_quote(value) end
    local command = table.concat({
      "env -u OPENAI_MODEL -u OPENAI_ORG_ID -u OPENAI_PROJECT_ID -u OPENAI_CUSTOM_HEADERS -u LUA_INIT",
      "OPENAI_API_KEY=" .. KEY, "OPENAI_BASE_URL=" .. process.shell_quote(server.base_url),
      "LUA_PATH='lua/?.lua;lua/?/init.lua;;'", "LUA_CPATH='build/?.so;;'",
      "lua5.4 examples/" .. name, table.concat(args, " "),
      "</dev/null >" .. process.shell_quote(out) .. " 2>" .. process.shell_quote(err),
    }, " ")
    local _, code = process.capture(command)
    local stdout, stderr = process.read_file(out), process.read_file(err)
    os.remove(out)
    os.remove(err)
    return stdout, code, stderr
  end

  it("responses.lua creates, streams, retrieves, lists the input and deletes", function()
    local stdout, code, stderr = run("responses.lua", "Say hi twice.")
    assert.are.same({ 0, "" }, { code, stderr })
    assert.are.equal(table.concat({
      "resp_mock1 (completed): Echo: Say hi twice.",
      "Echo: Say hi twice.",
      "-- streamed resp_mock2: 3 input + 4 output tokens",
      "retrieved resp_mock1: Echo: Say hi twice.",
      "  input item msg_in1: message",
      "deleted resp_mock1 and resp_mock2",
      "",
    }, "\n"), stdout)
    local routes = {}
    for i, req in ipairs(server:requests()) do routes[i] = req.method .. " " .. req.target end
    assert.are.same({ "POST /v1/responses", "POST /v1/responses", "GET /v1/responses/resp_mock1",
      "GET /v1/responses/resp_mock1/input_items", "DELETE /v1/responses/resp_mock1",
      "DELETE /v1/responses/resp_mock2" }, routes)
  end)

  it("conversation.lua keeps what was said in the conversation's items", function()
    local stdout, code, stderr = run("conversation.lua")
    assert.are.same({ 0, "" }, { code, stderr })
    assert.are.equal(table.concat({
      "conversation conv_mock1",
      "> My name is Ada.",
      "Echo: My name is Ada.",
      "> What is my name?",
      "Echo: What is my name?",
      "  message user: My name is Ada.",
      "  message assistant: Echo: My name is Ada.",
      "  message user: What is my name?",
      "  message assistant: Echo: What is my name?",
      "deleted conv_mock1",
      "",
    }, "\n"), stdout)
  end)

  it("an example whose call fails says why on stderr and exits 1", function()
    server:script { { status = 500, json = { error = { message = "mock outage" } } },
                    { status = 500, json = { error = { message = "mock outage" } } },
                    { status = 500, json = { error = { message = "mock outage" } } } }
    local stdout, code, stderr = run("conversation.lua")
    assert.are.same({ "", 1 }, { stdout, code })
    assert.matches("^InternalServerError: 500 mock outage", stderr)
  end)
end)
