-- openai.core's Connection as the Lua layer uses it on every call: the
-- short form of a 2xx JSON object (its request id, not the headers), and
-- the header list kept for the next request with the same table of lines.
local core = require("openai.core")
local mock = require("spec.helpers.mock")
local util = require("spec.helpers.util")

local KEY = "sk-test-connection-0123456789"

describe("conn:request", function()
  local server, connection, url

  setup(function()
    server = mock.start { api_key = KEY }
    url = server.base_url .. "/chat/completions/chatcmpl-abc123"
  end)
  teardown(function() server:stop() end)
  before_each(function()
    server:reset()
    connection = core.connection()
  end)
  after_each(function() connection:close() end)

  local AUTH = "Authorization: Bearer " .. KEY

  local function get(lines, id_only)
    return connection:request("GET", url, lines, nil, 5, true, id_only)
  end

  describe("with request_id_only", function()
    it("returns a 2xx JSON object with its x-request-id value in place of the headers", function()
      server:script { { passthrough = true, headers = { ["x-request-id"] = "req_short" } } }
      local status, headers, body, request_id = get({ AUTH }, true)
      assert.are.equal(200, status)
      assert.is_false(headers)
      assert.are.equal("chatcmpl-abc123", body.id)
      assert.is_nil(getmetatable(body))
      assert.are.equal("req_short", request_id)
    end)

    it("returns nil for the request id when the response has none", function()
      server:script { { json = { id = "x" }, headers = { ["x-request-id"] = false } } }
      local results = util.pack(get({ AUTH }, true))
      assert.are.equal(4, results.n)
      assert.are.equal(200, results[1])
      assert.is_false(results[2])
      assert.are.same({ id = "x" }, results[3])
      assert.is_nil(results[4])
    end)

    it("keeps the headers table for everything else", function()
      server:script {
        { json = { 1, 2 }, headers = { ["x-request-id"] = "req_array" } },
        { body = "not json", headers = { ["x-request-id"] = "req_text" } },
        { status = 204 },
        { status = 500, json = { error = { message = "boom" } }, headers = { ["x-request-id"] = "req_error" } },
      }
      local status, headers, body = get({ AUTH }, true)
      assert.are.same({ 200, "req_array", core.array_mt }, { status, headers["x-request-id"], getmetatable(body) })
      local decode_error
      status, headers, body, decode_error = get({ AUTH }, true)
      assert.are.same({ 200, "req_text", "not json" }, { status, headers["x-request-id"], body })
      assert.is_string(decode_error)
      status, headers, body = get({ AUTH }, true)
      assert.are.same({ 204, "" }, { status, body })
      assert.is_table(headers)
      status, headers, body = get({ AUTH }, true)
      assert.are.same({ 500, "req_error", "boom" }, { status, headers["x-request-id"], body.error.message })
    end)

    it("is ignored without decode", function()
      local status, headers, body = connection:request("GET", url, { AUTH }, nil, 5, false, true)
      assert.are.equal(200, status)
      assert.is_table(headers)
      assert.is_string(body)
    end)
  end)

  it("returns the headers table without request_id_only", function()
    local status, headers, body = get({ AUTH })
    assert.are.equal(200, status)
    assert.are.equal("application/json", headers["content-type"])
    assert.matches("^req_%x+$", headers["x-request-id"])
    assert.are.equal("chatcmpl-abc123", body.id)
  end)

  describe("header lines", function()
    local function sent(name)
      local log = server:requests()
      return server:header(log[#log], name)
    end

    it("the same table sends the same lines; another table sends its own", function()
      local a = { AUTH, "X-Which: a" }
      local b = { AUTH, "X-Which: b", "X-Only-B: 1" }
      for _, case in ipairs { { a, "a" }, { a, "a" }, { b, "b" }, { a, "a" }, { b, "b" }, { b, "b" } } do
        assert.are.equal(200, (get(case[1])))
        assert.are.equal(case[2], sent("x-which"))
        assert.are.equal(case[2] == "b" and "1" or nil, sent("x-only-b"))
      end
    end)

    it("a table the connection has let go of is never mistaken for a new one", function()
      for i = 1, 50 do
        assert.are.equal(200, (get({ AUTH, "X-Round: " .. i })))
        collectgarbage("collect")
        assert.are.equal(tostring(i), sent("x-round"))
      end
    end)

    it("a rejected table leaves no list behind", function()
      local bad = { AUTH, "X-Bad: a\r\nX-Evil: 1" }
      for _ = 1, 2 do
        local ok, err = pcall(get, bad)
        assert.is_false(ok)
        assert.matches("header 2 contains CR, LF or NUL", err)
      end
      assert.are.equal(0, server:stats().requests)
    end)

    it("a closed connection lets go of its table", function()
      -- A weak-keyed table sees the collection (tables have no __gc on 5.1).
      local alive = setmetatable({}, { __mode = "k" })
      local lines = { AUTH }
      alive[lines] = true
      assert.are.equal(200, (get(lines)))
      lines = nil -- luacheck: ignore
      collectgarbage("collect")
      assert.is_not_nil(next(alive))
      connection:close()
      collectgarbage("collect")
      collectgarbage("collect")
      assert.is_nil(next(alive))
    end)
  end)
end)
