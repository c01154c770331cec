-- Debian's nginx loads the LuaJIT build (build/luajit/openai/core.so, which
-- `make LUA=luajit` builds) through its Lua module, and a client made in
-- init_by_lua, in the master, serves the workers nginx forks afterwards:
-- each worker calls on connections of its own, even when the master had
-- opened one before the fork. The app inside nginx is spec/nginx/app.lua.
local mock = require("spec.helpers.mock")
local nginx = require("spec.helpers.nginx")
local process = require("spec.helpers.process")
local socket = require("socket")
local util = require("spec.helpers.util")

local KEY = "sk-test-nginx-0123456789"
local FIELDS = require("spec.helpers.golden").FIELDS

-- Under a sanitizer or valgrind, which instrument this process and not
-- nginx, these specs would only take time.
local missing = nginx.missing()
  or process.instrumented() and "nginx specs do not run under a sanitizer or valgrind"

describe("nginx", function()
  if missing then
    pending(missing)
    return
  end

  local server, jit_version
  setup(function()
    local ok, log = util.make("all", "luajit")
    assert(ok, "make LUA=luajit failed:\n" .. log)
    -- The LuaJIT nginx's Lua module links: OpenResty's, as the luajit binary is.
    local version = process.run("luajit -e 'io.write(jit.version)'")
    jit_version = version
    server = mock.start { api_key = KEY }
  end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  local function init_code(call, transport)
    return ('require("spec.nginx.app").init(%q, %q, %s, %s)'):format(server.base_url, KEY, tostring(call),
      transport and ("%q"):format(transport) or "nil")
  end

  -- The body of GET /retrieve, less its last line (the worker's PID),
  -- which it returns apart.
  local function split_worker(body)
    local rest, pid = body:match("^(.*)worker=(%d+)\n$")
    return rest or body, tonumber(pid)
  end

  it("loads the LuaJIT build; a content handler retrieves with the client made in init_by_lua", function()
    local n = nginx.start {
      init = init_code(false),
      locations = { ["/retrieve"] = 'require("spec.nginx.app").retrieve()' },
    }
    finally(function() n:remove() end)
    local results = {}
    for i = 1, 3 do
      local status, body = n:get("/retrieve")
      local text, pid = split_worker(body)
      results[i] = { status, text, pid ~= nil }
    end
    local workers = n:workers()
    n:stop()
    local expected = { 200, FIELDS .. "runtime=" .. jit_version .. "\n", true }
    assert.are.same({ expected, expected, expected }, results)
    assert.are.equal(1, #workers)
    assert.are.same({}, n:problems(), n:log())
    -- one worker, one client: one connection for the three calls
    assert.are.same({ requests = 3, connections = 1 }, server:stats())
  end)

  it("workers forked after init_by_lua made a call each use connections of their own (transport = \"curl\")", function()
    -- The workers call as they start, at the same time. The first call to
    -- arrive is answered after 300 ms and the next at once, so that over
    -- one connection shared by both workers the two answers would come
    -- together and one worker could read both, leaving the other waiting.
    server:script { { passthrough = true }, { delay_ms = 300, passthrough = true }, { passthrough = true } }
    local n = nginx.start {
      workers = 2,
      init = init_code(true, "curl"),
      init_worker = function(prefix) return ('require("spec.nginx.app").worker_call(%q)'):format(prefix .. "/reports") end,
      locations = { ["/retrieve"] = 'require("spec.nginx.app").retrieve()' },
    }
    finally(function() n:remove() end)
    local ok = process.wait_ready(n.pid, 10, function() return #n:workers() == 2 end)
    assert.is_true(ok, n:log())
    local workers = n:workers()
    -- Each worker's call as it started (init_worker_by_lua), within 10 s.
    local reports = {}
    local ready = process.wait_ready(n.pid, 10, function()
      for _, pid in ipairs(workers) do
        reports[pid] = process.read_file(n.prefix .. "/reports/worker-" .. pid .. ".txt")
        if reports[pid] == nil then return false end
      end
      return true
    end)
    assert.is_true(ready, n:log())
    for _, pid in ipairs(workers) do assert.are.equal(FIELDS, reports[pid]) end
    -- Then requests, each answered by one worker or the other.
    local results, served = {}, {}
    for i = 1, 6 do
      local status, body = n:get("/retrieve")
      local text, pid = split_worker(body)
      results[i] = { status, text }
      if pid then served[pid] = true end
    end
    n:stop()
    local expected = { 200, FIELDS .. "runtime=" .. jit_version .. "\n" }
    assert.are.same({ expected, expected, expected, expected, expected, expected }, results)
    assert.are.same({}, n:problems(), n:log())
    -- The master's call went over connection 1, which only it used; each
    -- worker kept one connection of its own for all its calls.
    local requests = server:requests()
    assert.are.equal(9, #requests)
    assert.are.equal(1, requests[1].connection)
    local used = {}
    for i = 2, #requests do
      assert.are_not.equal(1, requests[i].connection)
      used[requests[i].connection] = true
    end
    local count = 0
    for _ in pairs(used) do count = count + 1 end
    assert.are.equal(2, count)
    assert.are.same({ requests = 9, connections = 3 }, server:stats())
  end)

  -- One worker whose init_worker_by_lua runs `wrap` around the app's
  -- worker_call; returns that call's report, once nginx has stopped.
  local function init_worker_report(wrap)
    local n = nginx.start {
      init = init_code(false),
      init_worker = function(prefix)
        return wrap(('require("spec.nginx.app").worker_call(%q)'):format(prefix .. "/reports"))
      end,
    }
    finally(function() n:remove() end)
    local report
    assert.is_true(process.wait_ready(n.pid, 10, function()
      local pid = n:workers()[1]
      report = pid and process.read_file(n.prefix .. "/reports/worker-" .. pid .. ".txt")
      return report ~= nil
    end), n:log())
    n:stop()
    return report, n
  end

  it("a call in init_worker_by_lua with the automatic transport raises, naming the phase", function()
    local report = init_worker_report(function(call) return call end)
    assert.are.equal("raised: spec/nginx/app.lua:19: openai: nginx's init_worker phase cannot make requests without"
      .. " blocking the worker: make the call from a request handler or a timer (ngx.timer.at(0, fn)), or pass"
      .. " transport = \"curl\" to openai.new to block on purpose", (report:gsub("^raised: /[^:]*/spec/", "raised: spec/")))
    assert.are.same({ requests = 0, connections = 0 }, server:stats())
  end)

  it("a call in a timer started by init_worker_by_lua goes over cosockets", function()
    local report, n = init_worker_report(function(call) return "ngx.timer.at(0, function() " .. call .. " end)" end)
    assert.are.equal(FIELDS, report)
    assert.are.same({}, n:problems(), n:log())
    -- libcurl would have asked for compressed bodies; cosockets do not
    assert.is_nil(server:header(server:requests()[1], "accept-encoding"))
  end)

  -- Sends `count` GET requests on connections of their own without reading
  -- the answers; returns a function that reads them all (status, body each).
  local function send_all(n, path, count)
    local sockets = {}
    for i = 1, count do
      local c = assert(socket.tcp())
      c:settimeout(10)
      assert(c:connect("127.0.0.1", n.port))
      assert(c:send("GET " .. path .. " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"))
      sockets[i] = c
    end
    return function()
      local answers = {}
      for i, c in ipairs(sockets) do
        local text = c:receive("*a") or ""
        c:close()
        answers[i] = { tonumber(text:match("^HTTP/1%.%d (%d+)")), text:match("\r\n\r\n(.*)$") }
      end
      return answers
    end
  end

  for _, how in ipairs { "cosockets (automatic)", "libcurl (transport = \"curl\")" } do
    local blocking = how:find("curl", 1, true) ~= nil
    it(("one worker, four calls waiting on a slow server over %s: %s"):format(how,
        blocking and "they wait one after another" or "all in flight at once, and a trivial location answers meanwhile"),
      function()
        server:script { { delay_ms = 600, passthrough = true }, { delay_ms = 600, passthrough = true },
                        { delay_ms = 600, passthrough = true }, { delay_ms = 600, passthrough = true } }
        local n = nginx.start {
          init = init_code(false, blocking and "curl" or nil),
          locations = { ["/retrieve"] = 'require("spec.nginx.app").retrieve()', ["/trivial"] = 'ngx.print("ok")' },
        }
        finally(function() n:remove() end)
        local collect = send_all(n, "/retrieve", 4)
        if not blocking then
          -- All four reach the server while the worker is free to serve.
          assert.is_true(process.wait_ready(n.pid, 10, function() return server:in_flight() == 4 end), n:log())
          assert.are.same({ 200, "ok" }, { n:get("/trivial") })
          assert.are.equal(4, (server:in_flight()))
        end
        local answers = collect()
        n:stop()
        for i = 1, 4 do
          assert.are.equal(200, answers[i][1])
          assert.are.equal(FIELDS, (split_worker(answers[i][2]):gsub("runtime=[^\n]*\n$", "")))
        end
        local _, peak = server:in_flight()
        assert.are.equal(blocking and 1 or 4, peak)
        assert.are.same({}, n:problems(), n:log())
      end)
  end

  it("light threads (ngx.thread.spawn) share one client and wait on the server at the same time", function()
    server:script { { delay_ms = 300, passthrough = true }, { delay_ms = 300, passthrough = true },
                    { delay_ms = 300, passthrough = true }, { delay_ms = 300, passthrough = true } }
    local n = nginx.start {
      init = init_code(false),
      locations = { ["/threads"] = [=[
        local app = require("spec.nginx.app")
        local threads = {}
        for i = 1, 4 do threads[i] = ngx.thread.spawn(app.retrieve_text) end
        for i = 1, 4 do
          local ok, text = ngx.thread.wait(threads[i])
          ngx.print(ok and text or "failed\n")
        end
      ]=] },
    }
    finally(function() n:remove() end)
    local status, body = n:get("/threads")
    n:stop()
    assert.are.same({ 200, FIELDS .. FIELDS .. FIELDS .. FIELDS }, { status, body })
    local _, peak = server:in_flight()
    assert.are.equal(4, peak)
    assert.are.same({}, n:problems(), n:log())
  end)

  it("openai.spawn makes light threads: four retrieves in flight at once, errors and results as outside", function()
    server:script { { delay_ms = 300, passthrough = true }, { delay_ms = 300, passthrough = true },
                    { delay_ms = 300, passthrough = true }, { delay_ms = 300, passthrough = true } }
    local n = nginx.start {
      init = init_code(false),
      locations = { ["/tasks"] = 'require("spec.nginx.app").tasks()' },
    }
    finally(function() n:remove() end)
    local status, body = n:get("/tasks")
    n:stop()
    assert.are.same({ 200, "running=4 fd=nil timeout=nil\n" .. FIELDS .. FIELDS .. FIELDS .. FIELDS
      .. "raised=false NotFoundError 404 openai.Task (failed)\nran=42 running=0\n" }, { status, body }, n:log())
    local _, peak = server:in_flight()
    assert.are.equal(4, peak)
    assert.are.same({}, n:problems(), n:log())
  end)

  it("cancelling a task inside nginx kills its light thread and drops its stream's connection", function()
    -- A first chunk at once, then comments every 300 ms: the server notices
    -- a closed connection only when it writes.
    local sse = { 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[]}\n\n' }
    for i = 1, 30 do sse[#sse + 1] = { data = ": " .. i .. "\n\n", delay_ms = 300 } end
    sse[#sse + 1] = "data: [DONE]\n\n"
    server:script { { status = 200, headers = { ["content-type"] = "text/event-stream" }, sse = sse } }
    local n = nginx.start {
      init = init_code(false),
      locations = { ["/cancel"] = 'require("spec.nginx.app").cancel_stream()' },
    }
    finally(function() n:remove() end)
    local status, body = n:get("/cancel")
    assert.are.same({ 200, "first=true\nnil APIUserAbortError the task was cancelled openai.Task (cancelled) running=0\n" },
      { status, body })
    assert.is_true(process.wait_ready(n.pid, 10, function() return server:in_flight() == 0 end), n:log())
    n:stop()
    assert.are.same({}, n:problems(), n:log())
  end)

  it("a function run by ngx.run_worker_thread calls over libcurl, blocking only its thread", function()
    local n = nginx.start {
      main = { "thread_pool openai_spec threads=2;" },
      locations = { ["/thread"] = ([=[
        local ok, text = ngx.run_worker_thread("openai_spec", "spec.nginx.app", "in_thread", %q, %q)
        ngx.print(ok and text or ("failed: " .. tostring(text)))
      ]=]):format(server.base_url, KEY) },
    }
    finally(function() n:remove() end)
    local status, body = n:get("/thread")
    n:stop()
    assert.are.same({ 200, FIELDS }, { status, body })
    assert.are.same({}, n:problems(), n:log())
    -- libcurl asks for compressed bodies; cosockets do not
    assert.is_not_nil(server:header(server:requests()[1], "accept-encoding"))
  end)

  it("examples/openresty/app.lua answers a plain call and relays a stream as server-sent events", function()
    local n = nginx.start {
      env = { OPENAI_API_KEY = KEY, OPENAI_BASE_URL = server.base_url, OPENAI_MODEL = "gpt-4o-mini" },
      locations = {
        ["/chat"] = 'require("examples.openresty.app").chat()',
        ["/stream"] = 'require("examples.openresty.app").stream()',
      },
    }
    finally(function() n:remove() end)
    assert.are.same({ 200, "Echo: one two\n" }, { n:get("/chat?q=one%20two") })
    assert.are.same({ 200, 'data: {"text":"Echo: "}\n\ndata: {"text":"one "}\n\ndata: {"text":"two"}\n\ndata: [DONE]\n\n' },
      { n:get("/stream?q=one%20two") })
    server:script { { status = 401, json = { error = { message = "bad key", type = "invalid_request_error" } } } }
    assert.are.same({ 401, '{"error":{"message":"401 bad key","type":"AuthenticationError"}}' }, { n:get("/chat") })
    n:stop()
    assert.are.same({}, n:problems(), n:log())
  end)

  it("the cosocket transport refuses what it cannot honour, and says why a connection failed", function()
    local n = nginx.start { locations = { ["/refusals"] = [=[
      local openai = require("openai")
      local function cause(opts)
        opts.api_key, opts.max_retries, opts.timeout = "sk-x", 0, 2
        local _, err = openai.new(opts).chat.completions.retrieve("x")
        ngx.say(err.name, " | ", tostring(err.cause))
      end
      cause {}
      cause { base_url = "http://127.0.0.1:]=] .. mock.free_port() .. [=[/v1" }
      cause { ca_file = "/etc/ssl/certs/ca-certificates.crt" }
      cause { proxy = "http://127.0.0.1:3128" }
      ngx.say(select(2, pcall(openai.new, { api_key = "sk-x", transport = "ngx", ca_path = "/etc/ssl/certs" })))
    ]=] } }
    finally(function() n:remove() end)
    local status, body = n:get("/refusals")
    n:stop()
    assert.are.equal(200, status)
    local lines = {}
    for line in body:gmatch("[^\n]+") do lines[#lines + 1] = (line:gsub("127%.0%.0%.1:%d+", "127.0.0.1:PORT")) end
    assert.are.same({
      'APIConnectionError | cannot connect to api.openai.com: no resolver defined to resolve "api.openai.com"',
      "APIConnectionError | cannot connect to 127.0.0.1:PORT: connection refused",
      "APIConnectionError | the ngx transport trusts the CAs of nginx's lua_ssl_trusted_certificate directive,"
        .. " not the options 'ca_file' and 'ca_path'",
      "APIConnectionError | the ngx transport cannot use a proxy (option 'proxy'); pass transport = \"curl\" to use one",
      "openai.new: the ngx transport trusts the CAs of nginx's lua_ssl_trusted_certificate directive,"
        .. " not the options 'ca_file' and 'ca_path'",
    }, lines)
  end)

  describe("TLS by host name (a local DNS responder for .test names, nginx's resolver)", function()
    local tls = require("spec.helpers.tls")
    if tls.missing() then
      pending(tls.missing())
      return
    end
    local dir, dns_pid, fronts = nil, nil, {}
    local dns_port = mock.free_port()

    setup(function()
      dir = tls.tempdir()
      local port = tonumber(server.base_url:match(":(%d+)/v1$"))
      local named = tls.certificate(dir, "named", { san = "DNS:api.test", cn = "api.test" })
      local other = tls.certificate(dir, "other", { san = "DNS:other.test", cn = "other.test" })
      process.write_file(dir .. "/trusted.pem", process.read_file(named.cert) .. process.read_file(other.cert))
      fronts.named = tls.start { dir = dir, cert = named.cert, key = named.key, port = port }
      fronts.other = tls.start { dir = dir, cert = other.cert, key = other.key, port = port }
      dns_pid = assert(process.spawn(("lua5.4 spec/dns/server.lua %d %d"):format(dns_port, process.own_pid())))
    end)
    teardown(function()
      if dns_pid then process.stop(dns_pid) end
      for _, front in pairs(fronts) do front:stop() end
      if dir then tls.remove(dir) end
    end)

    it("verifies the certificate against the host name, through nginx's resolver", function()
      local code = [=[
        local openai = require("openai")
        for _, port in ipairs { PORTS } do
          local client = openai.new { api_key = KEY, base_url = "https://api.test:" .. port .. "/v1", max_retries = 0, timeout = 5 }
          local cc, err = client.chat.completions.retrieve("chatcmpl-abc123")
          ngx.say(cc and cc.id or (err.name .. " | " .. tostring(err.cause)))
        end
      ]=]
      code = code:gsub("PORTS", fronts.named.url:match(":(%d+)$") .. ", " .. fronts.other.url:match(":(%d+)$"))
        :gsub("KEY", ("%q"):format(KEY))
      local n = nginx.start {
        http = { ("resolver 127.0.0.1:%d ipv6=off;"):format(dns_port),
                 "lua_ssl_trusted_certificate " .. dir .. "/trusted.pem;" },
        locations = { ["/named"] = code },
      }
      finally(function() n:remove() end)
      local status, body = n:get("/named")
      n:stop()
      assert.are.equal(200, status, n:log())
      assert.are.equal("chatcmpl-abc123\nAPIConnectionError | TLS handshake with api.test:"
        .. fronts.other.url:match(":(%d+)$") .. " failed: certificate host mismatch\n", body)
      assert.are.equal(1, server:stats().requests)
    end)
  end)
end)
