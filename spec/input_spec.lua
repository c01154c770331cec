-- Input checks before any request: CR, LF and NUL never reach the wire.
-- Credentials, header names and values, organization, project and base_url
-- with them are refused at once (openai.new or the call raises); ids and
-- query parameters are percent-encoded. Every test then looks at what the
-- mock received: how many requests, their raw targets and header lines.
local openai = require("openai")
local core = require("openai.core")
local mock = require("spec.helpers.mock")
local util = require("spec.helpers.util")

local KEY = "sk-test-input-0123456789"
local EVIL_KEY = "sk-test-input-SECRET-9876"

-- The header lines of a plain GET from this client, in wire order
-- (lower-cased names); tests add what they expect on top.
local BASE_HEADERS = {
  "host", "accept-encoding", "accept", "user-agent", "x-stainless-lang", "x-stainless-package-version",
  "x-stainless-os", "x-stainless-arch", "x-stainless-runtime", "x-stainless-runtime-version",
}

describe("input checks", function()
  local server, client
  local session = mock.session({ api_key = KEY }, { max_retries = 0 }, function(s, c) server, client = s, c end)
  setup(session.setup)
  teardown(session.teardown)
  before_each(session.before_each)

  -- A test name's text on one line (%q, its newlines as \n).
  local function one_line_q(text)
    return (("%q"):format(text):gsub("\\\n", "\\n"))
  end

  -- The error text of a raising call, without its "file:line: " prefix.

local function raised(f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok, "expected an error")
    return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
  end

  local function assert_no_request()
    assert.are.same({ requests = 0, connections = 0 }, server:stats())
    assert.are.same({}, server:requests())
  end

  -- Header names of a logged request, lower-cased, in wire order; and no
  -- name or value holds a control character other than TAB.
  local function header_names(req)
    local names = {}
    for i, h in ipairs(req.headers) do
      assert.is_nil(h[1]:find("[%c]"), "control character in header name " .. h[1])
      assert.is_nil(h[2]:find("[%z\1-\8\10-\31\127]"), "control character in header " .. h[1])
      names[i] = h[1]:lower()
    end
    return names
  end

  local function expected_names(extra, tail)
    local names = {}
    for i, n in ipairs(BASE_HEADERS) do names[i] = n end
    for _, n in ipairs(extra or {}) do names[#names + 1] = n end
    names[#names + 1] = "authorization"
    for _, n in ipairs(tail or { "x-stainless-retry-count" }) do names[#names + 1] = n end
    return names
  end

  -- Each bad character, and how the client quotes it in a message (as Lua
  -- 5.4's %q, on one line, whatever the runtime).
  local BAD = { CR = { "\r", "\\13" }, LF = { "\n", "\\n" }, CRLF = { "\r\n", "\\13\\n" }, NUL = { "\0", "\\0" } }
  local function each_bad(f)
    for label, bad in pairs(BAD) do f(label, bad[1], bad[2]) end
  end

  describe("the API key", function()
    each_bad(function(label, char)
      it("with " .. label .. " is refused by openai.new without echoing the key", function()
        local key = EVIL_KEY .. char .. "X-Evil: 1"
        local message = raised(openai.new, { api_key = key, base_url = server.base_url })
        assert.are.equal("openai.new: the API key contains CR, LF or NUL", message)
        assert.is_nil(message:find("SECRET", 1, true))
        assert_no_request()
      end)
    end)

    it("with LF in OPENAI_API_KEY is refused on the module's first call", function()
      local out, code = util.run_lua([[
        local openai = require("openai")
        local ok, err = pcall(openai.chat.completions.retrieve, "chatcmpl-abc123")
        io.write(tostring(ok), "|", tostring(err))
      ]], util.clean_env { OPENAI_API_KEY = EVIL_KEY .. "\nX-Evil: 1", OPENAI_BASE_URL = server.base_url })
      assert.are.equal(0, code)
      assert.are.equal("false|openai.new: the API key contains CR, LF or NUL", out)
      assert.is_nil(out:find("SECRET", 1, true))
      assert_no_request()
    end)
  end)

  describe("organization and project", function()
    for _, field in ipairs { "organization", "project" } do
      local header = field == "organization" and "OpenAI-Organization" or "OpenAI-Project"
      each_bad(function(label, char)
        it(field .. " with " .. label .. " is refused", function()
          local message = raised(openai.new,
            { api_key = KEY, base_url = server.base_url, [field] = "ok" .. char .. "X-Evil: 1" })
          assert.are.equal("openai.new: " .. header .. " contains CR, LF or NUL", message)
          assert_no_request()
        end)
      end)
    end

    it("with LF in OPENAI_ORG_ID / OPENAI_PROJECT_ID is refused", function()
      for variable, header in pairs { OPENAI_ORG_ID = "OpenAI-Organization", OPENAI_PROJECT_ID = "OpenAI-Project" } do
        local out, code = util.run_lua([[
          local ok, err = pcall(require("openai").new)
          io.write(tostring(ok), "|", tostring(err))
        ]], util.clean_env { OPENAI_API_KEY = KEY, OPENAI_BASE_URL = server.base_url, [variable] = "x\nX-Evil: 1" })
        assert.are.equal(0, code)
        assert.are.equal("false|openai.new: " .. header .. " contains CR, LF or NUL", out)
      end
      assert_no_request()
    end)
  end)

  describe("base_url", function()
    each_bad(function(label, char)
      it("with " .. label .. " is refused", function()
        local base = server.base_url .. char .. "X-Evil: 1"
        local message = raised(openai.new, { api_key = KEY, base_url = base })
        assert.are.equal("openai.new: base_url must be an http:// or https:// URL without spaces or control characters",
          message)
        assert_no_request()
      end)
    end)

    it("with LF in OPENAI_BASE_URL is refused", function()
      local out, code = util.run_lua([[
        local ok, err = pcall(require("openai").new)
        io.write(tostring(ok), "|", tostring(err))
      ]], util.clean_env { OPENAI_API_KEY = KEY, OPENAI_BASE_URL = server.base_url .. "/x\nX-Evil: 1" })
      assert.are.equal(0, code)
      assert.are.equal("false|openai.new: base_url must be an http:// or https:// URL without spaces or control characters",
        out)
      assert_no_request()
    end)
  end)

  describe("headers", function()
    each_bad(function(label, char, quoted)
      it("a per-call header value with " .. label .. " raises before the request", function()
        local message = raised(client.chat.completions.retrieve, "chatcmpl-abc123",
          { headers = { ["X-Trace"] = "1" .. char .. "X-Evil: 1" } })
        assert.are.equal("bad argument #2 to 'chat.completions.retrieve' (headers: header 'X-Trace' contains CR, LF or NUL)",
          message)
        assert_no_request()
      end)

      it("a per-call header name with " .. label .. " raises before the request", function()
        local name = "X-Trace" .. char .. "X-Evil"
        local message = raised(client.chat.completions.retrieve, "chatcmpl-abc123", { headers = { [name] = "1" } })
        assert.are.equal("bad argument #2 to 'chat.completions.retrieve' (headers: invalid header name \"X-Trace"
          .. quoted .. "X-Evil\")", message)
        assert_no_request()
      end)

      it("a default_headers value with " .. label .. " is refused by openai.new", function()
        local message = raised(openai.new,
          { api_key = KEY, base_url = server.base_url, default_headers = { ["X-Trace"] = "1" .. char .. "X-Evil: 1" } })
        assert.are.equal("openai.new: default_headers: header 'X-Trace' contains CR, LF or NUL", message)
        assert_no_request()
      end)

      it("a default_headers name with " .. label .. " is refused by openai.new", function()
        local name = "X-Trace" .. char .. "X-Evil"
        local message = raised(openai.new, { api_key = KEY, base_url = server.base_url, default_headers = { [name] = "1" } })
        assert.are.equal("openai.new: default_headers: invalid header name \"X-Trace" .. quoted .. "X-Evil\"", message)
        assert_no_request()
      end)
    end)

    it("names that are not tokens are refused", function()
      for _, name in ipairs { "", "X Trace", "X-Trace:", "X-Trace: 1", "X(Trace)", "X-Tr\195\169ce" } do
        local message = raised(client.chat.completions.retrieve, "chatcmpl-abc123", { headers = { [name] = "1" } })
        assert.are.equal("bad argument #2 to 'chat.completions.retrieve' (headers: invalid header name \"" .. name .. "\")",
          message)
      end
      assert_no_request()
    end)

    it("a clean header next to the refused ones goes through unchanged", function()
      local cc = assert(client.chat.completions.retrieve("chatcmpl-abc123", { headers = { ["X-Trace"] = "a\tb c" } }))
      assert.are.equal("chatcmpl-abc123", cc.id)
      local req = server:requests()[1]
      assert.are.same(expected_names(nil, { "x-stainless-retry-count", "x-trace" }), header_names(req))
      assert.are.equal("a\tb c", server:header(req, "x-trace"))
    end)

    describe("that control framing or the connection", function()
      local FRAMING = { "Content-Length", "Transfer-Encoding", "Connection", "Host", "Expect", "Upgrade", "TE", "Trailer" }
      -- Each name as written, lower-cased and upper-cased, with values that
      -- would change the framing, remove the header, or look harmless.
      local function each_case(f)
        for _, header in ipairs(FRAMING) do
          for _, name in ipairs { header, header:lower(), header:upper() } do
            for _, value in ipairs { "0", "chunked", "", false, openai.null, 5 } do f(name, value) end
          end
        end
      end

      it("are refused in a call's headers, naming the header, before anything is sent", function()
        each_case(function(name, value)
          local message = raised(client.chat.completions.retrieve, "chatcmpl-abc123", { headers = { [name] = value } })
          assert.are.equal(("bad argument #2 to 'chat.completions.retrieve' (headers: '%s' is set by the client and cannot be overridden)")
            :format(name), message)
        end)
        local message = raised(client.chat.completions.create, { model = "m", messages = {} },
          { headers = { ["Content-Length"] = "0" } })
        assert.are.equal("bad argument #2 to 'chat.completions.create' (headers: 'Content-Length' is set by the client and cannot be overridden)",
          message)
        assert_no_request()
      end)

      it("are refused in default_headers by openai.new", function()
        each_case(function(name, value)
          local message = raised(openai.new, { api_key = KEY, base_url = server.base_url, default_headers = { [name] = value } })
          assert.are.equal(("openai.new: default_headers: '%s' is set by the client and cannot be overridden"):format(name),
            message)
        end)
        assert_no_request()
      end)

      it("are refused in OPENAI_CUSTOM_HEADERS on the module's first call", function()
        for _, line in ipairs { "Content-Length: 0", "transfer-encoding: chunked", "CONNECTION: close", "Host: evil",
                                "Expect: 100-continue", "Upgrade: h2c", "te: trailers", "Trailer: X" } do
          local out, code = util.run_lua([[
            local openai = require("openai")
            local ok, err = pcall(openai.chat.completions.retrieve, "chatcmpl-abc123", { max_retries = 0 })
            io.write(tostring(ok), "|", tostring(err))
          ]], util.clean_env { OPENAI_API_KEY = KEY, OPENAI_BASE_URL = server.base_url, OPENAI_CUSTOM_HEADERS = "X-A: 1\n" .. line })
          assert.are.equal(0, code)
          assert.are.equal(("false|OPENAI_CUSTOM_HEADERS: '%s' is set by the client and cannot be overridden")
            :format(line:match("^[^:]+")), out)
        end
        assert_no_request()
      end)

      it("names that only resemble them go through, on one kept-alive connection", function()
        for _, name in ipairs { "Content-Length-X", "X-Host", "Connection2", "Tes", "Expect-CT" } do
          assert(client.chat.completions.retrieve("chatcmpl-abc123", { headers = { [name] = "1" } }))
        end
        assert.are.same({ requests = 5, connections = 1 }, server:stats())
      end)
    end)

    describe("OPENAI_CUSTOM_HEADERS", function()
      -- One retrieve from the module's client in a child process.
      local function child(custom)
        return util.run_lua([[
          local openai = require("openai")
          local ok, cc, err = pcall(openai.chat.completions.retrieve, "chatcmpl-abc123", { max_retries = 0 })
          if not ok then io.write("raised|", tostring(cc)) else io.write(cc and cc.id or tostring(err)) end
        ]], util.clean_env { OPENAI_API_KEY = KEY, OPENAI_BASE_URL = server.base_url, OPENAI_CUSTOM_HEADERS = custom })
      end

      it("CR, LF and CRLF each end a line: every line is its own header, no raw CR or LF in a value", function()
        local out, code = child("X-One: 1\rX-Two: 2\nX-Three: 3\r\nX-Four: a\r\r\nno colon here\n")
        assert.are.same({ "chatcmpl-abc123", 0 }, { out, code })
        local requests = server:requests()
        assert.are.equal(1, #requests)
        local req = requests[1]
        assert.are.same(expected_names(nil, { "x-one", "x-two", "x-three", "x-four", "x-stainless-retry-count" }),
          header_names(req))
        assert.are.equal("1", server:header(req, "x-one"))
        assert.are.equal("2", server:header(req, "x-two"))
        assert.are.equal("3", server:header(req, "x-three"))
        assert.are.equal("a", server:header(req, "x-four"))
      end)

      it("a line whose name is not a token makes the first call raise, before any request", function()
        local out, code = child("X-One: 1\nX Evil: 2")
        assert.are.equal(0, code)
        assert.are.equal("raised|OPENAI_CUSTOM_HEADERS: invalid header name \"X Evil\"", out)
        assert_no_request()
      end)
    end)
  end)

  describe("ids are percent-encoded", function()
    local cases = {
      { "abc\r\nX-Evil: 1", "abc%0D%0AX-Evil:%201" },
      { "abc\rX-Evil", "abc%0DX-Evil" },
      { "abc\nX-Evil", "abc%0AX-Evil" },
      { "a\0b", "a%00b" },
      { "\0", "%00" },
      { "a b/../c?d#e%", "a%20b%2F..%2Fc%3Fd%23e%25" },
    }
    for _, case in ipairs(cases) do
      local id, encoded = case[1], case[2]
      it(("%s becomes %s in the target"):format(one_line_q(id), encoded), function()
        local cc, err = client.chat.completions.retrieve(id)
        assert.is_nil(cc)
        assert.are.equal("NotFoundError", err.name)
        assert.are.equal(404, err.status)
        local requests = server:requests()
        assert.are.equal(1, #requests)
        assert.are.equal("/v1/chat/completions/" .. encoded, requests[1].target)
        assert.are.same(expected_names(), header_names(requests[1]))
      end)
    end

    it("in every method with a path parameter", function()
      local id = "x\r\nX-Evil: 1\0"
      local encoded = "x%0D%0AX-Evil:%201%00"
      client.chat.completions.retrieve(id)
      client.chat.completions.update(id, { metadata = { k = "v" } })
      client.chat.completions.delete(id)
      client.chat.completions.messages.list(id)
      local targets = {}
      for i, req in ipairs(server:requests()) do
        targets[i] = req.method .. " " .. req.target
        for _, h in ipairs(req.headers) do assert.are_not.equal("x-evil", h[1]:lower()) end
      end
      assert.are.same({
        "GET /v1/chat/completions/" .. encoded,
        "POST /v1/chat/completions/" .. encoded,
        "DELETE /v1/chat/completions/" .. encoded,
        "GET /v1/chat/completions/" .. encoded .. "/messages",
      }, targets)
    end)
  end)

  describe("query parameters are percent-encoded", function()
    it("NUL inside a query value", function()
      assert(client.chat.completions.list { after = "a\0b" })
      local requests = server:requests()
      assert.are.equal(1, #requests)
      assert.are.equal("/v1/chat/completions?after=a%00b", requests[1].target)
      assert.are.same(expected_names(), header_names(requests[1]))
    end)

    it("CR, LF and NUL in keys and values, from every query layer", function()
      local layered = openai.new { api_key = KEY, base_url = server.base_url, max_retries = 0,
                                   default_query = { ["d\n"] = "\0" } }
      local _, err = layered.chat.completions.messages.list("id", { ["k\r\nX-Evil"] = "v\r\n" },
        { query = { z = "\r\0\n" } })
      layered:close()
      assert.are.equal(404, err.status)
      local requests = server:requests()
      assert.are.equal(1, #requests)
      assert.are.equal("/v1/chat/completions/id/messages?d%0A=%00&k%0D%0AX-Evil=v%0D%0A&z=%0D%00%0A", requests[1].target)
      assert.are.same(expected_names(), header_names(requests[1]))
    end)
  end)

  describe("the C transport refuses them too", function()
    -- openai.core's Connection is the last line: even a caller that skips
    -- the Lua checks cannot put CR, LF or NUL into a header line, nor CR or
    -- LF into the URL.
    local connection
    before_each(function() connection = core.connection() end)
    after_each(function() connection:close() end)

    it("header lines", function()
      for _, line in ipairs { "X-A: b\r\nX-Evil: 1", "X-A: b\rc", "X-A: b\nc", "X-A: b\0c" } do
        local ok, err = pcall(connection.request, connection, "GET", server.base_url .. "/models", { line }, nil, 5)
        assert.is_false(ok)
        assert.are.equal("header 1 contains CR, LF or NUL", err)
      end
      assert_no_request()
    end)

    it("the URL", function()
      for _, suffix in ipairs { "\r\nX-Evil: 1", "\rX", "\nX", "\0/evil" } do
        local ok, err = pcall(function()
          -- not a tail call: LuaJIT names no function it tail-called in a message
          local status = connection:request("GET", server.base_url .. "/models" .. suffix, {}, nil, 5)
          return status
        end)
        assert.is_false(ok)
        assert.matches("bad argument #2 to 'request' %(URL contains CR, LF or NUL%)$", err)
      end
      assert_no_request()
    end)
  end)
end)
