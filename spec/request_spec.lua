-- What goes on the wire: paths, base URL joining, query, headers.
local openai = require("openai")
local mock = require("spec.helpers.mock")
local util = require("spec.helpers.util")

local KEY = "sk-test-request-0123456789"

describe("requests", function()
  local server

  setup(function() server = mock.start { api_key = KEY } end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function with_client(opts, fn)
    opts.api_key = opts.api_key or KEY
    opts.base_url = opts.base_url or server.base_url
    opts.max_retries = opts.max_retries or 0
    local client = openai.new(opts)
    local ok, err = pcall(fn, client)
    client:close()
    assert(ok, err)
  end

  local function last_request()
    local log = server:requests()
    return log[#log]
  end

  describe("path parameters", function()
    local cases = {
      { "a/b c", "/v1/chat/completions/a%2Fb%20c" },
      { "a?b#c", "/v1/chat/completions/a%3Fb%23c" },
      { "\195\164", "/v1/chat/completions/%C3%A4" }, -- U+00E4
      { "%2e%2e", "/v1/chat/completions/%252e%252e" },
      { "a%2Fb", "/v1/chat/completions/a%252Fb" },
      { "x..y", "/v1/chat/completions/x..y" },
      { "...", "/v1/chat/completions/..." },
      { "-._~!$&'()*+,;=:@", "/v1/chat/completions/-._~!$&'()*+,;=:@" },
      { "a\"<>\\^`{|}", "/v1/chat/completions/a%22%3C%3E%5C%5E%60%7B%7C%7D" },
      { "tab\there", "/v1/chat/completions/tab%09here" },
    }
    for _, case in ipairs(cases) do
      it(("encodes %q as %s"):format(case[1], case[2]), function()
        with_client({}, function(client)
          local _, err = client.chat.completions.retrieve(case[1])
          assert.are.equal("NotFoundError", err.name)
          assert.are.equal(case[2], last_request().target)
          assert.are.equal("404 No chat completion found with id '" .. case[1] .. "'.", err.message)
        end)
      end)
    end

    for _, bad in ipairs { ".", "..", "", 123, true, {}, openai.null } do
      it(("raises for %s before any request"):format(type(bad) == "string" and ("%q"):format(bad) or type(bad)), function()
        with_client({}, function(client)
          local ok, err = pcall(client.chat.completions.retrieve, bad)
          assert.is_false(ok)
          assert.matches("bad argument #1 to 'chat.completions.retrieve' %(completion_id", err)
          assert.are.equal(0, server:stats().requests)
        end)
      end)
    end

    it("raises for nil", function()
      with_client({}, function(client)
        assert.has_error(function() client.chat.completions.retrieve() end,
          "bad argument #1 to 'chat.completions.retrieve' (completion_id must be a non-empty string, got nil)")
      end)
    end)

    it("names the caller's line in the error", function()
      with_client({}, function(client)
        local ok, err = pcall(function() client.chat.completions.retrieve("..") end)
        assert.is_false(ok)
        assert.matches("request_spec.lua:%d+: bad argument #1", err)
      end)
    end)
  end)

  describe("base URL", function()
    local port_base
    before_each(function() port_base = server.url end)

    for _, case in ipairs {
      { "/v1", "/v1/chat/completions/chatcmpl-abc123" },
      { "/v1/", "/v1/chat/completions/chatcmpl-abc123" },
      { "/v1?x=1", "/v1/chat/completions/chatcmpl-abc123?x=1" },
      { "/v1/?x=1", "/v1/chat/completions/chatcmpl-abc123?x=1" },
    } do
      it(("joins %s"):format(case[1]), function()
        with_client({ base_url = port_base .. case[1] }, function(client)
          assert(client.chat.completions.retrieve("chatcmpl-abc123"))
          assert.are.equal(case[2], last_request().target)
        end)
      end)
    end

    it("does not add /v1", function()
      with_client({ base_url = port_base }, function(client)
        local _, err = client.chat.completions.retrieve("chatcmpl-abc123")
        assert.are.equal(404, err.status)
        assert.are.equal("/chat/completions/chatcmpl-abc123", last_request().target)
      end)
    end)

    it("keeps a custom path", function()
      with_client({ base_url = port_base .. "/custom/path/" }, function(client)
        client.chat.completions.retrieve("chatcmpl-abc123")
        assert.are.equal("/custom/path/chat/completions/chatcmpl-abc123", last_request().target)
      end)
    end)

    it("rejects a base URL that is not http(s)", function()
      for _, bad in ipairs { "ftp://x/v1", "127.0.0.1:80/v1", "http://a b/v1", "http://x/v1\r\nX-Evil: 1" } do
        local ok, err = pcall(openai.new, { api_key = KEY, base_url = bad })
        assert.is_false(ok)
        assert.matches("base_url must be an http:// or https:// URL", err)
      end
    end)
  end)

  describe("query", function()
    it("merges default_query and the call's query; false removes", function()
      with_client({ default_query = { a = "1", b = "2" } }, function(client)
        assert(client.chat.completions.retrieve("chatcmpl-abc123", { query = { b = false, c = "x y", d = true } }))
        assert.are.equal("/v1/chat/completions/chatcmpl-abc123?a=1&c=x%20y&d=true", last_request().target)
      end)
    end)

    it("encodes nested tables with brackets", function()
      with_client({}, function(client)
        assert(client.chat.completions.retrieve("chatcmpl-abc123", {
          query = { metadata = { topic = "a&b" }, ids = { "x", "y" }, n = 2, f = 0.5, z = openai.null },
        }))
        assert.are.equal("/v1/chat/completions/chatcmpl-abc123?f=0.5&ids%5B%5D=x&ids%5B%5D=y"
          .. "&metadata%5Btopic%5D=a%26b&n=2&z=", last_request().target)
      end)
    end)

    it("treats a table with holes or other keys as an object (fuzz regression)", function()
      with_client({}, function(client)
        assert(client.chat.completions.retrieve("chatcmpl-abc123", { query = { q = { "a", nil, "c", x = 1 } } }))
        assert.are.equal("/v1/chat/completions/chatcmpl-abc123?q%5B1%5D=a&q%5B3%5D=c&q%5Bx%5D=1", last_request().target)
      end)
    end)

    it("sends no ? for an empty query", function()
      with_client({ default_query = {} }, function(client)
        assert(client.chat.completions.retrieve("chatcmpl-abc123", { query = {} }))
        assert.are.equal("/v1/chat/completions/chatcmpl-abc123", last_request().target)
      end)
    end)
  end)

  describe("headers", function()
    it("sends OpenAI-Organization and OpenAI-Project when set", function()
      with_client({ organization = "org-1", project = "proj_2" }, function(client)
        assert(client.chat.completions.retrieve("chatcmpl-abc123"))
        local req = last_request()
        assert.are.equal("org-1", server:header(req, "openai-organization"))
        assert.are.equal("proj_2", server:header(req, "openai-project"))
      end)
    end)

    it("sends X-Stainless-Timeout only for a per-call timeout", function()
      with_client({ timeout = 30 }, function(client)
        assert(client.chat.completions.retrieve("chatcmpl-abc123"))
        assert.is_nil(server:header(last_request(), "x-stainless-timeout"))
        assert(client.chat.completions.retrieve("chatcmpl-abc123", { timeout = 5.9 }))
        assert.are.equal("5", server:header(last_request(), "x-stainless-timeout"))
      end)
    end)

    it("names the runtime it runs on in X-Stainless-Runtime and X-Stainless-Runtime-Version", function()
      with_client({}, function(client)
        assert(client.chat.completions.retrieve("chatcmpl-abc123"))
        local req = last_request()
        local runtime, version = server:header(req, "x-stainless-runtime"), server:header(req, "x-stainless-runtime-version")
        if util.is_luajit then
          assert.are.same({ "luajit", jit.version }, { runtime, "LuaJIT " .. version })
        else
          assert.are.same({ "lua", _VERSION }, { runtime, "Lua " .. version })
        end
      end)
    end)

    it("sends numbers as header values, integers as their digits on every runtime", function()
      with_client({ default_headers = { ["X-Big"] = 9007199254740991, ["X-Half"] = 1.5 } }, function(client)
        assert(client.chat.completions.retrieve("chatcmpl-abc123", { headers = { ["X-Small"] = -7 } }))
        local req = last_request()
        assert.are.same({ "9007199254740991", "1.5", "-7" },
          { server:header(req, "x-big"), server:header(req, "x-half"), server:header(req, "x-small") })
      end)
    end)

    it("lets default_headers and call headers override, whatever the case; false removes", function()
      with_client({ default_headers = { ["x-team"] = "blue", ["ACCEPT"] = "application/json; q=1" } }, function(client)
        assert(client.chat.completions.retrieve("chatcmpl-abc123", {
          headers = { ["X-Trace"] = "1", ["User-Agent"] = false, ["X-Stainless-Retry-Count"] = "42", ["x-team"] = "red" },
        }))
        local req = last_request()
        assert.are.equal("1", server:header(req, "x-trace"))
        assert.are.equal("red", server:header(req, "x-team"))
        assert.are.equal("42", server:header(req, "x-stainless-retry-count"))
        assert.are.equal("application/json; q=1", server:header(req, "accept"))
        assert.is_nil(server:header(req, "user-agent"))
        local names = {}
        for _, pair in ipairs(req.headers) do names[pair[1]:lower()] = (names[pair[1]:lower()] or 0) + 1 end
        for name, count in pairs(names) do assert.are.equal(1, count, name) end
      end)
    end)

    it("can remove Accept entirely", function()
      with_client({}, function(client)
        assert(client.chat.completions.retrieve("chatcmpl-abc123", { headers = { Accept = false } }))
        assert.is_nil(server:header(last_request(), "accept"))
      end)
    end)

    it("can remove Authorization, and the server then answers 401", function()
      with_client({}, function(client)
        local _, err = client.chat.completions.retrieve("chatcmpl-abc123", { headers = { Authorization = false } })
        assert.are.equal("AuthenticationError", err.name)
        assert.is_nil(server:header(last_request(), "authorization"))
      end)
    end)

    it("rejects CR, LF and NUL in header names and values before sending", function()
      with_client({}, function(client)
        for _, headers in ipairs {
          { ["X-A"] = "1\r\nX-Evil: 1" }, { ["X-A"] = "1\n" }, { ["X-A"] = "a\0b" },
          { ["X-A\r\nX-Evil"] = "1" }, { ["bad name"] = "1" }, { [""] = "1" }, { ["X-A"] = {} },
        } do
          local ok, err = pcall(client.chat.completions.retrieve, "chatcmpl-abc123", { headers = headers })
          assert.is_false(ok)
          assert.matches("bad argument #2 to 'chat.completions.retrieve' %(headers", err)
        end
        assert.are.equal(0, server:stats().requests)
      end)
    end)
  end)
end)
