-- The transport contract: the cases of spec/contract/ run through the
-- libcurl transport (in this process, under every runtime) and through the
-- cosocket transport (in a content handler of a real nginx, Debian's with
-- its Lua module, which loads the LuaJIT build), and each must pass the
-- same checks. nginx runs the same LuaJIT whatever runs busted, so the
-- cosocket half runs once, with the Lua 5.4 suite.
local openai = require("openai")
local process = require("spec.helpers.process")
local hostile = require("spec.helpers.hostile")
local mock = require("spec.helpers.mock")
local nginx = require("spec.helpers.nginx")
local tls = require("spec.helpers.tls")
local util = require("spec.helpers.util")
local run = require("spec.contract.run")

local KEY = "sk-test-contract-0123456789"
local FILES = { "retrieve", "resources", "streams", "responses", "errors", "retries", "input", "tls", "hostile" }

local helpers = {
  KEY = KEY,
  int64 = openai.int64,
  decode = openai.json.decode,
  encode = openai.json.encode,
}

function helpers.fixture(name)
  return openai.json.decode(assert(util.read_file("spec/fixtures/" .. name .. ".json")))
end

local function query_string(params)
  local keys, parts = {}, {}
  for key in pairs(params) do keys[#keys + 1] = key end
  table.sort(keys)
  for i, key in ipairs(keys) do
    parts[i] = key .. "=" .. tostring(params[key]):gsub("[^%w%-%._~]", function(c)
      return ("%%%02X"):format(c:byte())
    end)
  end
  return table.concat(parts, "&")
end

local missing = nginx.missing() or tls.missing()
-- Not under a sanitizer or valgrind either: they instrument this process,
-- not nginx.
local cosockets_here = _VERSION == "Lua 5.4" and type(jit) ~= "table" and not process.instrumented()

describe("the transport contract", function()
  local server, raw_server, front, untrusted, dir, web
  local env = { api_key = KEY }

  setup(function()
    server = mock.start { api_key = KEY }
    env.base_url = server.base_url
    env.closed_url = ("http://127.0.0.1:%d/v1"):format(mock.free_port())
    raw_server = hostile.start { dir = false }
    env.hostile_url = raw_server.base_url
    if missing then return end
    dir = tls.tempdir()
    local good, other = tls.certificate(dir, "server"), tls.certificate(dir, "other")
    local port = tonumber(server.base_url:match(":(%d+)/v1$"))
    front = tls.start { dir = dir, cert = good.cert, key = good.key, port = port }
    untrusted = tls.start { dir = dir, cert = other.cert, key = other.key, port = port }
    env.tls_url, env.untrusted_url, env.ca_file = front.url .. "/v1", untrusted.url .. "/v1", good.cert
    if not cosockets_here then return end
    local ok, log = util.make("all", "luajit")
    assert(ok, "make LUA=luajit failed:\n" .. log)
    web = nginx.start {
      http = { "lua_ssl_trusted_certificate " .. good.cert .. ";", "lua_ssl_verify_depth 2;" },
      locations = { ["/contract"] = 'require("spec.contract.run").serve()' },
    }
  end)

  teardown(function()
    if web then web:remove() end
    if front then front:stop() end
    if untrusted then untrusted:stop() end
    if dir then tls.remove(dir) end
    raw_server:stop()
    server:stop()
  end)

  local function through_curl(file, index)
    local here = { transport = "curl" }
    for key, value in pairs(env) do here[key] = value end
    here.transport = "curl"
    return run.case(file, index, here)
  end

  local function through_ngx(file, index)
    local params = { file = file, case = index }
    for key, value in pairs(env) do params[key] = value end
    local status, body = web:get("/contract?" .. query_string(params))
    assert(status == 200, ("nginx answered %s: %s\n%s"):format(tostring(status), tostring(body), web:log()))
    return body
  end

  for _, file in ipairs(FILES) do
    for index, case in ipairs(require("spec.contract." .. file)) do
      for _, transport in ipairs(cosockets_here and { "curl", "ngx" } or { "curl" }) do
        it(("%s: %s [%s]"):format(file, case.name, transport), function()
          if (transport == "ngx" or case.tls) and missing then
            pending(missing)
            return
          end
          server:reset()
          if case.script then server:script(case.script) end
          local text = (transport == "curl" and through_curl or through_ngx)(file, index)
          local result = openai.json.decode(text)
          assert(result.raised == nil, "the call raised: " .. tostring(result.raised))
          helpers.transport = transport
          case.check(result, server, helpers)
        end)
      end
    end
  end
end)
