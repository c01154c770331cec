-- No credential in any string the library produces: the API key, the
-- userinfo of the base URL and of a proxy URL, and the proxy option itself
-- never show in tostring() of a client, stream, page or error, in an
-- error's fields, or in what openai.new raises.
local openai = require("openai")
local mock = require("spec.helpers.mock")
local util = require("spec.helpers.util")

local KEY = "sk-test-secrets-KEYSECRET-0123456789"
local SECRETS = { KEY, "KEYSECRET", "hunter2", "PROXYSECRET" }
local STREAM = { model = "m", messages = { { role = "user", content = "hi" } }, stream = true }

-- Every string an error object shows, its own and tostring().
local function error_strings(err)
  assert.are.equal(openai.Error, getmetatable(err), tostring(err))
  local out = { tostring(err) }
  for _, field in ipairs { "message", "cause", "type", "code", "param", "request_id" } do
    if type(err[field]) == "string" then out[#out + 1] = err[field] end
  end
  return out
end

local function assert_clean(strings, where)
  for _, text in ipairs(strings) do
    for _, secret in ipairs(SECRETS) do
      assert.is_nil(text:find(secret, 1, true), ("%s: %q shows %s"):format(where or "", text, secret))
    end
  end
end

-- The message openai.new raises for these options, without its position.
local function raised_by_new(opts)
  local ok, err = pcall(openai.new, opts)
  assert.is_false(ok, "openai.new accepted the options")
  return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
end

describe("secrets", function()
  local server
  setup(function() server = mock.start { api_key = KEY } end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  describe("tostring(client)", function()
    local cases = {
      { "http://user:hunter2@host/v1", "http://host/v1" },
      { "http://user:hunter2@127.0.0.1:8080/v1?api-key=hunter2#hunter2", "http://127.0.0.1:8080/v1" },
      { "https://user@host:443/v1/", "https://host:443/v1/" },
      { "http://:hunter2@[::1]:8080/v1", "http://[::1]:8080/v1" },
      { "HTTPS://User:hunter2@Host.example/v1", "HTTPS://Host.example/v1" },
      { "http://user:hun/ter2@host/v1", "http://host/v1" }, -- a raw "/" in the password
      { "http://user:a@hunter2@host/v1", "http://host/v1" }, -- a raw "@" in the password
      { "https://api.example.com/openai/v1?api-version=hunter2", "https://api.example.com/openai/v1" },
      { "http://host", "http://host" },
    }
    for _, case in ipairs(cases) do
      it(("shows %s as %s"):format(case[1], case[2]), function()
        local client = openai.new { api_key = KEY, base_url = case[1] }
        assert.are.equal("openai.Client (" .. case[2] .. ")", tostring(client))
        client:close()
        assert.are.equal("openai.Client (" .. case[2] .. ") closed", tostring(client))
      end)
    end
  end)

  it("shows in no string of a client, stream, page or error that talks to the mock", function()
    local base = server.base_url:gsub("^http://", "http://user:hunter2@") .. "?api-key=hunter2"
    local client = openai.new { api_key = KEY, base_url = base, max_retries = 0 }
    local strings = { tostring(client) }
    local stream = assert(client.chat.completions.create(STREAM))
    strings[#strings + 1] = tostring(stream)
    assert(stream:final())
    strings[#strings + 1] = tostring(stream)
    local page = assert(client.chat.completions.list())
    strings[#strings + 1] = tostring(page)
    local _, err = client.chat.completions.retrieve("chatcmpl-nope")
    assert.are.equal("NotFoundError", err.name)
    for _, text in ipairs(error_strings(err)) do strings[#strings + 1] = text end
    server:script { { status = 200, headers = { ["content-type"] = "text/event-stream" },
                      sse = { "data: {\"choices\":[]}\n\n" }, sse_end = "close" } }
    stream = assert(client.chat.completions.create(STREAM))
    assert(stream:next())
    local _, cut = stream:next()
    assert.are.equal("APIConnectionError", cut.name)
    for _, text in ipairs(error_strings(cut)) do strings[#strings + 1] = text end
    stream = assert(client.chat.completions.create(STREAM))
    stream:close()
    local _, aborted = stream:next()
    for _, text in ipairs(error_strings(aborted)) do strings[#strings + 1] = text end
    strings[#strings + 1] = tostring(stream)
    client:close()
    strings[#strings + 1] = tostring(client)
    assert_clean(strings)
  end)

  it("shows in no connection error, to a refused base URL or through a refused proxy", function()
    local port = mock.free_port()
    local clients = {
      openai.new { api_key = KEY, base_url = "http://user:hunter2@127.0.0.1:" .. port .. "/v1", max_retries = 0 },
      openai.new { api_key = KEY, base_url = server.base_url, max_retries = 0,
                   proxy = "http://user:PROXYSECRET@127.0.0.1:" .. port },
      openai.new { api_key = KEY, base_url = server.base_url, max_retries = 0,
                   proxy = "socks5h://user:PROXYSECRET@127.0.0.1:" .. port },
    }
    for i, client in ipairs(clients) do
      local _, err = client.chat.completions.retrieve("chatcmpl-abc123")
      assert.are.equal("APIConnectionError", err.name)
      local _, stream_err = client.chat.completions.create(STREAM)
      assert.are.equal("APIConnectionError", stream_err.name)
      assert_clean(error_strings(err), "client " .. i)
      assert_clean(error_strings(stream_err), "client " .. i)
      assert_clean({ tostring(client) }, "client " .. i)
      client:close()
    end
  end)

  it("shows in no error through a malformed proxy from the environment, which is not retried", function()
    local output, code = util.run_lua(([[
      local openai = require("openai")
      local client = openai.new { api_key = %q, base_url = %q, max_retries = 2 }
      local _, err = client.chat.completions.retrieve("chatcmpl-abc123")
      io.write(err.name, "|", err.cause)
    ]]):format(KEY, server.base_url), util.clean_env { http_proxy = "http://user:PROXYSECRET@ho st:1" })
    assert.are.equal(0, code, output)
    -- libcurl quotes the proxy; the C core replaces its userinfo
    assert.matches("^APIConnectionError|Unsupported proxy syntax in 'http://%*%*%*@ho st:1'", output)
    assert_clean({ output })
    assert.are.equal(0, server:stats().requests)
  end)

  describe("the proxy option", function()
    local malformed = {
      "http://user:PROXYSECRET@ho st:1", "ftp://user:PROXYSECRET@host:1", "file:///PROXYSECRET",
      "http://user:PROXYSECRET@host:0", "http://user:PROXYSECRET@host:65536", "http://user:PROXYSECRET@host:99999",
      "http://user:PROXYSECRET@host:port", "http://user:PROXYSECRET@host:1:2",
      "http://u:PROXY@SECRET@host:1", "http://user:PROXYSECRET@/", "http://user:PROXYSECRET@", "user:PROXYSECRET@",
      "http://user:PROXYSECRET@host/path", "http://user:PROXYSECRET@host:1//", "http://user:PROXYSECRET@host?x",
      "http://user:PROXYSECRET@host#x", "http://[::1", "http://[::1]x", "http://[PROXYSECRET]:1", "http://",
      "//host:1", "://host", "http://user:PROXYSECRET@999.1.1.1:1",
      "http://user:PROXYSECRET@1.2.3.4.5", "http://user:PROXY SECRET@host", "http://user:PROXYSECRET\n@host",
      "http://host.:1:PROXYSECRET", "http://-PROXYSECRET", "http://host..PROXYSECRET", " http://host",
      "http://host ", "http://user:PROXYSECRET@ho\0st",
    }
    for _, proxy in ipairs(malformed) do
      -- the name on one line: a newline would break busted's TAP output
      it(("refuses %s at once, without echoing it"):format((("%q"):format(proxy):gsub("\\\n", "\\n"))), function()
        local message = raised_by_new { api_key = KEY, base_url = server.base_url, proxy = proxy }
        assert.are.equal("openai.new: option 'proxy' is not a valid proxy URL", message)
        assert_clean({ message })
      end)
    end

    it("accepts the shapes libcurl takes", function()
      for _, proxy in ipairs {
        "", "http://proxy:3128", "proxy:3128", "proxy", "PROXY.example.com", "http://user:pw@proxy.example.com:8443/",
        "https://user@proxy", "socks4://10.0.0.1:1080", "socks4a://proxy:1080", "socks5://[::1]:1080",
        "SOCKS5H://[fe80::1]:1", "http://[::ffff:1.2.3.4]:65535", "http://user:p%40ss@host:1", "http://my_proxy.local:3128",
        "http://h\195\169st:1", "http:/host", "http://host:", "http://1.2.3:1",
        "http://:pw@host", "http://user:pw:with:colons@host", "http://user:a!$&'()*+,;=-._~@host", "http://host.:1",
        "http://1.2.3.4", "http://[fe80::1%25eth0]:3128",
      } do
        local ok, client = pcall(openai.new, { api_key = KEY, base_url = server.base_url, proxy = proxy })
        assert.is_true(ok, ("%q: %s"):format(proxy, tostring(client)))
        client:close()
      end
    end)

    it("of the wrong type raises without echoing it", function()
      assert.are.equal("openai.new: option 'proxy' must be a string", raised_by_new { api_key = KEY, proxy = { "PROXYSECRET" } })
    end)
  end)

  it("shows in nothing openai.new raises for other options", function()
    local messages = {
      raised_by_new { api_key = KEY, timeout = "x" },
      raised_by_new { api_key = KEY, base_url = "ftp://user:hunter2@host" },
      raised_by_new { api_key = KEY, base_url = "http://user:hunter2@host/v1\n" },
      raised_by_new { api_key = KEY, default_headers = { ["X-A"] = "hunter2\n" } },
      raised_by_new { api_key = KEY, default_headers = { ["Host"] = "hunter2" } },
      raised_by_new { api_key = KEY .. "\n" },
      raised_by_new { api_key = KEY, max_response_bytes = 0 },
      raised_by_new { api_key = KEY, ca_file = 1 },
    }
    assert.are.equal(8, #messages)
    assert_clean(messages)
  end)
end)
