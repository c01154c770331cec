-- Client construction: options, the environment, the module's default
-- client, closing, and keeping the API key out of every string.
local openai = require("openai")
local mock = require("spec.helpers.mock")
local util = require("spec.helpers.util")

local KEY = "sk-test-client-SECRET-0123456789"

describe("clients", function()
  local server

  setup(function() server = mock.start { api_key = KEY } end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  describe("options", function()
    local bad = {
      { { api_key = 42 }, "openai.new: option 'api_key' must be a string" },
      { { api_key = KEY, timeout = "5" }, "openai.new: timeout must be a positive number of seconds" },
      { { api_key = KEY, timeout = 0 }, "openai.new: timeout must be a positive number of seconds" },
      { { api_key = KEY, timeout = -1 }, "openai.new: timeout must be a positive number of seconds" },
      { { api_key = KEY, max_retries = -1 }, "openai.new: max_retries must be a non-negative integer" },
      { { api_key = KEY, max_retries = 1.5 }, "openai.new: max_retries must be a non-negative integer" },
      { { api_key = KEY, default_headers = "x" }, "openai.new: default_headers must be a table" },
      { { api_key = KEY, default_query = 1 }, "openai.new: default_query must be a table" },
      { { api_key = KEY, apikey = "x" }, "openai.new: unknown option 'apikey'" },
      { { api_key = KEY, organization = 7 }, "openai.new: option 'organization' must be a string" },
      { "sk-x", "openai.new: options must be a table" },
      { { api_key = KEY, transport = "http" }, 'openai.new: transport must be "curl" or "ngx"' },
      { { api_key = KEY, transport = "ngx" }, "openai.new: the ngx transport needs nginx's Lua module (OpenResty)" },
    }
    for _, case in ipairs(bad) do
      it("raises: " .. case[2], function()
        local ok, err = pcall(openai.new, case[1])
        assert.is_false(ok)
        assert.are.equal(case[2], (err:gsub("^[^:]+:%d+: ", "")))
      end)
    end

    local bad_call = {
      { { timeout = "5" }, "timeout must be a positive number of seconds" },
      { { timeout = 0 }, "timeout must be a positive number of seconds" },
      { { max_retries = -2 }, "max_retries must be a non-negative integer" },
      { { headers = "x" }, "headers must be a table" },
      { { query = "a=1" }, "query must be a table" },
      { { retries = 1 }, "unknown option 'retries'" },
      { "fast", "options must be a table" },
    }
    for _, case in ipairs(bad_call) do
      it("raises for call options: " .. case[2], function()
        local client = openai.new { api_key = KEY, base_url = server.base_url }
        local ok, err = pcall(client.chat.completions.retrieve, "chatcmpl-abc123", case[1])
        client:close()
        assert.is_false(ok)
        assert.are.equal("bad argument #2 to 'chat.completions.retrieve' (" .. case[2] .. ")", err)
        assert.are.equal(0, server:stats().requests)
      end)
    end

    it("accepts math.huge as no timeout and fractions of a second", function()
      local client = openai.new { api_key = KEY, base_url = server.base_url, timeout = math.huge }
      assert(client.chat.completions.retrieve("chatcmpl-abc123"))
      assert(client.chat.completions.retrieve("chatcmpl-abc123", { timeout = 2.5 }))
      client:close()
    end)
  end)

  describe("the API key", function()
    it("is required, and the message names OPENAI_API_KEY and api_key", function()
      local output, code = util.run_lua([[
        local openai = require("openai")
        local ok, err = pcall(openai.new)
        print(err)
        local ok2, err2 = pcall(openai.chat.completions.retrieve, "chatcmpl-abc123")
        print(ok2, err2)
      ]], util.clean_env())
      assert.are.equal(0, code)
      assert.are.equal(
        "openai: missing API key: pass api_key to openai.new{} or set the OPENAI_API_KEY environment variable\n"
        .. "false\topenai: missing API key: pass api_key to openai.new{} or set the OPENAI_API_KEY environment variable\n",
        output:gsub("[^\n]-:%d+: openai", "openai"))
    end)

    it("is treated as unset when blank", function()
      local output = util.run_lua([[print(pcall(require("openai").new))]], util.clean_env { OPENAI_API_KEY = "  \t " })
      assert.matches("missing API key", output)
    end)

    it("never appears in tostring of the client or of errors", function()
      local client = openai.new { api_key = KEY, base_url = server.base_url, max_retries = 0 }
      assert.are.equal("openai.Client (" .. server.base_url .. ")", tostring(client))
      local wrong = openai.new { api_key = KEY .. "-wrong", base_url = server.base_url, max_retries = 0 }
      local _, err = wrong.chat.completions.retrieve("chatcmpl-abc123")
      assert.are.equal("AuthenticationError", err.name)
      assert.are.equal("invalid_api_key", err.code)
      for _, text in ipairs { tostring(client), tostring(wrong), tostring(err), err.message } do
        assert.is_nil(text:find(KEY, 1, true), text)
        assert.is_nil(text:find("SECRET", 1, true), text)
      end
      for name, namespace in pairs(client) do
        assert.is_nil(tostring(namespace):find(KEY, 1, true), name)
      end
      client:close()
      wrong:close()
    end)

    it("with CR or LF is rejected without being echoed", function()
      local ok, err = pcall(openai.new, { api_key = "sk-SECRET\r\nX-Evil: 1" })
      assert.is_false(ok)
      assert.matches("the API key contains CR, LF or NUL", err)
      assert.is_nil(err:find("SECRET", 1, true))
    end)

    it("is sent as a Bearer token", function()
      local client = openai.new { api_key = KEY, base_url = server.base_url }
      assert(client.chat.completions.retrieve("chatcmpl-abc123"))
      client:close()
      assert.are.equal("Bearer " .. KEY, server:header(server:requests()[1], "authorization"))
    end)
  end)

  describe("the environment", function()
    local function run(code, environment)
      local output, status = util.run_lua(code, util.clean_env(environment))
      assert.are.equal(0, status, output)
      return output
    end

    it("configures the module's default client", function()
      local output = run([[
        local openai = require("openai")
        local cc, err = openai.chat.completions.retrieve("chatcmpl-abc123")
        print(cc and cc.id, err)
        print(openai.chat.completions:retrieve("chatcmpl-abc123").seed)
      ]], { OPENAI_API_KEY = "  " .. KEY .. "\n", OPENAI_BASE_URL = " " .. server.base_url .. " ",
            OPENAI_ORG_ID = "org-env", OPENAI_PROJECT_ID = "proj-env" })
      -- print shows the seed as tostring does: "...LL" for LuaJIT's int64 cdata.
      assert.are.equal("chatcmpl-abc123\tnil\n" .. tostring(openai.int64("4944116822809979520")) .. "\n", output)
      local req = server:requests()[1]
      assert.are.equal("Bearer " .. KEY, server:header(req, "authorization"))
      assert.are.equal("org-env", server:header(req, "openai-organization"))
      assert.are.equal("proj-env", server:header(req, "openai-project"))
    end)

    it("lets options win over the environment", function()
      run(([[
        local openai = require("openai")
        local client = openai.new { api_key = %q, base_url = %q, organization = "org-opt" }
        assert(client.chat.completions.retrieve("chatcmpl-abc123"))
      ]]):format(KEY, server.base_url), { OPENAI_API_KEY = "sk-env-wrong", OPENAI_BASE_URL = "http://127.0.0.1:1/v1",
                                          OPENAI_ORG_ID = "org-env" })
      assert.are.equal("org-opt", server:header(server:requests()[1], "openai-organization"))
    end)

    it("uses the official base URL when OPENAI_BASE_URL is blank", function()
      local output = run([[print(tostring(require("openai").new { api_key = "k" }))]], { OPENAI_BASE_URL = "   " })
      assert.are.equal("openai.Client (https://api.openai.com/v1)\n", output)
    end)

    it("adds OPENAI_CUSTOM_HEADERS beneath default_headers", function()
      run(([[
        local openai = require("openai")
        local client = openai.new { api_key = %q, base_url = %q, default_headers = { ["X-B"] = "from-option" } }
        assert(client.chat.completions.retrieve("chatcmpl-abc123"))
      ]]):format(KEY, server.base_url), { OPENAI_CUSTOM_HEADERS = "X-A: one\nX-B: from-env\n  X-C :  three  " })
      local req = server:requests()[1]
      assert.are.equal("one", server:header(req, "x-a"))
      assert.are.equal("from-option", server:header(req, "x-b"))
      assert.are.equal("three", server:header(req, "x-c"))
    end)
  end)

  describe("closing", function()
    it("can be repeated, and later calls raise", function()
      local client = openai.new { api_key = KEY, base_url = server.base_url }
      assert(client.chat.completions.retrieve("chatcmpl-abc123"))
      client:close()
      client:close()
      assert.are.equal("openai.Client (" .. server.base_url .. ") closed", tostring(client))
      assert.has_error(function() client.chat.completions.retrieve("chatcmpl-abc123") end,
        "openai: attempt to use a closed client")
      assert.are.equal(1, server:stats().requests)
    end)

    it("happens when a client is garbage-collected", function()
      for _ = 1, 20 do
        local client = openai.new { api_key = KEY, base_url = server.base_url }
        assert(client.chat.completions.retrieve("chatcmpl-abc123"))
      end
      collectgarbage()
      collectgarbage()
      assert.are.equal(20, server:stats().requests)
    end)
  end)
end)
