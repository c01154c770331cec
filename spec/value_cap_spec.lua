-- max_response_values: a cap on the JSON values one response body or one
-- stream event may decode to. Without it, a few bytes of "[]," become a
-- Lua table each (80 bytes): a 63 MB body would take 1.9 GB.
local openai = require("openai")
local hostile = require("spec.helpers.hostile")

local KEY = "sk-test-value-cap-0123456789"

-- {"object":"list","data":[[],[],...]}: n + 3 values.
local function list_of_empty_arrays(n)
  return '{"object":"list","data":[' .. string.rep("[],", n - 1) .. "[]]}"
end

describe("max_response_values", function()
  local server
  setup(function()
    server = hostile.start { files = { ["at-cap.json"] = list_of_empty_arrays(997),
                                       ["over-cap.json"] = list_of_empty_arrays(998) } }
  end)
  teardown(function() server:stop() end)

  local function client(opts)
    local all = { api_key = KEY, base_url = server.base_url .. "/files", max_retries = 0 }
    for k, v in pairs(opts or {}) do all[k] = v end
    return openai.new(all)
  end

  it("lets a body of exactly max_response_values values decode", function()
    local list = assert(client { max_response_values = 1000 }.chat.completions.retrieve("at-cap"))
    assert.are.equal(997, #list.data)
    assert.are.equal(openai.array_mt, getmetatable(list.data[997]))
  end)

  it("refuses a body of one value more, as a validation error, without retrying", function()
    local c = client { max_response_values = 1000, max_retries = 2 }
    local result, err = c.chat.completions.retrieve("over-cap")
    assert.is_nil(result)
    assert.are.equal("APIResponseValidationError", err.name)
    assert.are.equal("200 response body exceeds max_response_values: JSON has more than 1000 values", err.message)
    assert.are.equal(list_of_empty_arrays(998), err.body)
    assert.are.equal("req_over-cap", err.request_id)
  end)

  it("applies to each stream event", function()
    local c = openai.new { api_key = KEY, base_url = server.base_url .. "/slow-events?count=2&every_ms=1",
                           max_retries = 0, max_response_values = 2 }
    local stream = assert(c.chat.completions.create { model = "m", stream = true, messages = {} })
    local chunk, err = stream:next() -- {"n":1,"pad":""}: 3 values
    assert.is_nil(chunk)
    assert.are.equal("APIResponseValidationError", err.name)
    assert.are.equal("200 server-sent event exceeds max_response_values: JSON has more than 2 values", err.message)
    assert.are.same({ nil, err }, { stream:next() })
  end)

  it("must be a positive integer", function()
    for _, bad in ipairs { 0, -1, 1.5, "10" } do
      local ok, err = pcall(openai.new, { api_key = KEY, max_response_values = bad })
      assert.is_false(ok)
      assert.matches("openai.new: max_response_values must be a positive integer$", err)
    end
  end)
end)
