-- A client used on both sides of a fork(), as in a server that makes its
-- clients before it forks its workers (nginx's init_by_lua, a preforking
-- server). The parent's connections stay the parent's: a child opens its
-- own, never reads or writes the parent's sockets, and fails cleanly on a
-- stream the parent opened. fork() comes from a test helper built for the
-- suite's runtime (spec/fork/fork.c); each child reports through a file and
-- its exit status, and is killed by its PID if it outlives its bound.
local openai = require("openai")
local mock = require("spec.helpers.mock")
local process = require("spec.helpers.process")
local util = require("spec.helpers.util")
local tls = require("spec.helpers.tls")

local KEY = "sk-test-fork-0123456789"
local CHILD_SECONDS = 10 -- far beyond what a child needs (its calls time out after 3 s)
local GOLDEN = "chatcmpl-abc123 4944116822809979520 Mind of circuits hum, \nLearning patterns in silence— \n"
  .. "Future's quiet spark."

local fork

-- The golden completion as exact text (the seed through the encoder: its
-- exact digits whatever the runtime makes of it).
local function describe_completion(cc, err)
  if cc == nil then return "error: " .. tostring(err) end
  return cc.id .. " " .. openai.json.encode(cc.seed) .. " " .. cc.choices[1].message.content
end

-- Starts body() in a forked child. The child writes what body returns to a
-- file and leaves with _exit (0, or 1 when body raised): no finalizer of
-- the parent's objects (the mock's handle, say) runs there. child.finish()
-- waits CHILD_SECONDS at most, kills a child that is still running, and
-- returns how it ended, its status and its report.
local function start_child(body)
  local report = os.tmpname()
  local pid = assert(fork.fork())
  if pid == 0 then
    local ok, result = pcall(body)
    local f = io.open(report, "wb")
    if f then
      f:write(ok and tostring(result) or ("raised: " .. tostring(result)))
      f:close()
    end
    fork.exit(ok and 0 or 1)
  end
  return {
    finish = function()
      local how, status = fork.wait(pid, CHILD_SECONDS)
      if how == nil then fork.kill(pid) end
      local text = process.read_file(report) or ""
      os.remove(report)
      return how or status, how and status, text
    end,
  }
end

local function in_child(body)
  return start_child(body).finish()
end

-- The mock's connection number of each request, in order.
local function connections(server)
  local list = {}
  for i, r in ipairs(server:requests()) do list[i] = r.connection end
  return list
end

describe("fork", function()
  local server, client

  setup(function()
    local ok, log = util.make("fork-helper")
    assert(ok, "make fork-helper failed:\n" .. log)
    fork = assert(package.loadlib(util.build_dir() .. "/spec/fork.so", "luaopen_fork"))()
    server = mock.start { api_key = KEY }
  end)
  teardown(function() server:stop() end)
  before_each(function()
    server:reset()
    client = openai.new { api_key = KEY, base_url = server.base_url, max_retries = 0, timeout = 3 }
  end)
  after_each(function() client:close() end)

  local function retrieve()
    return describe_completion(client.chat.completions.retrieve("chatcmpl-abc123"))
  end

  it("a child calls on connections of its own; the parent goes on with its own", function()
    assert.are.equal(GOLDEN, retrieve())
    local how, status, report = in_child(function() return retrieve() .. "\n" .. retrieve() end)
    assert.are.same({ "exited", 0 }, { how, status }, report)
    assert.are.equal(GOLDEN .. "\n" .. GOLDEN, report)
    assert.are.equal(GOLDEN, retrieve())
    -- the parent's connection (1) before and after; the child's (2) twice
    assert.are.same({ 1, 2, 2, 1 }, connections(server))
  end)

  it("parent and child call at the same time, each on its own connection", function()
    assert.are.equal(GOLDEN, retrieve()) -- the parent's connection, pooled
    -- Both calls are answered after 300 ms, so they overlap, as two
    -- workers' calls do.
    server:script { { delay_ms = 300, passthrough = true }, { delay_ms = 300, passthrough = true } }
    local child = start_child(retrieve)
    local mine = retrieve()
    local how, status, report = child.finish()
    assert.are.same({ "exited", 0 }, { how, status }, report)
    assert.are.equal(GOLDEN, report)
    assert.are.equal(GOLDEN, mine)
    local seen = connections(server)
    assert.are.equal(1, seen[1])
    table.sort(seen)
    assert.are.same({ 1, 1, 2 }, seen)
  end)

  it("a child forsakes the parent's pendings and Loop set; each finishes its own requests", function()
    local core = require("openai.core")
    local url = server.base_url .. "/chat/completions/chatcmpl-abc123"
    local auth = { "Authorization: Bearer " .. KEY }
    local conn, loop = core.connection(), core.loop()
    local function drive(p)
      for _ = 1, 200 do
        if p:done() then return end
        loop:poll(0.05)
      end
    end
    server:script { { delay_ms = 300, passthrough = true } }
    local p = conn:start("GET", url, auth, nil, 5)
    for _ = 1, 200 do
      if #server:requests() >= 1 then break end
      loop:poll(0.02)
    end
    local how, status, report = in_child(function()
      local theirs = { p:result() }
      local q = conn:start("GET", url, auth, nil, 3)
      drive(q)
      local mine, _, body = q:result()
      return table.concat({ tostring(theirs[1]), theirs[2], theirs[3], tostring(mine), body and body.id or "?" }, "\n")
    end)
    assert.are.same({ "exited", 0 }, { how, status }, report)
    assert.are.equal(table.concat({ "nil", "connection", "the request was started by another process, before a fork: "
      .. "only that process can take its result", "200", "chatcmpl-abc123" }, "\n"), report)
    -- the parent's socket is still in its set: the response wakes its poll
    drive(p)
    local mine, _, body = p:result()
    assert.are.same({ 200, "chatcmpl-abc123" }, { mine, body.id })
    assert.are.same({ 1, 2 }, connections(server))
    conn:close()
  end)

  it("a stream the parent opened fails cleanly in the child and reads whole in the parent", function()
    local function event(text)
      return "data: " .. openai.json.encode {
        id = "chatcmpl-s1", object = "chat.completion.chunk", created = 1, model = "m",
        choices = { { index = 0, delta = { content = text }, finish_reason = openai.null } },
      } .. "\n\n"
    end
    server:script { { status = 200, headers = { ["content-type"] = "text/event-stream" }, sse_end = "finish",
                      sse = { event("one"), { data = event("two"), delay_ms = 300 } } } }
    local stream = assert(client.chat.completions.create {
      model = "m", stream = true, messages = { { role = "user", content = "hi" } } })
    assert.are.equal("one", assert(stream:next()).choices[1].delta.content)
    local how, status, report = in_child(function()
      local chunk, err = stream:next()
      local again, err2 = stream:next()
      stream:close()
      return table.concat({ tostring(chunk), tostring(err), tostring(again), tostring(err2), retrieve() }, "\n")
    end)
    assert.are.same({ "exited", 0 }, { how, status }, report)
    local refused = "APIConnectionError: Connection error. (the stream was opened by another process, before a "
      .. "fork: only that process can read it)"
    assert.are.equal(table.concat({ "nil", refused, "nil", refused, GOLDEN }, "\n"), report)
    -- the parent reads the rest, which the child never touched
    local chunk, err = stream:next()
    assert.is_nil(err)
    assert.are.equal("two", chunk.choices[1].delta.content)
    assert.are.same({ nil, nil }, { stream:next() })
    assert.are.equal(GOLDEN, retrieve())
  end)

  -- A debug hook (spec/hooks/hooks.c sets one from SIGALRM) runs while the
  -- parent's call waits, and forks there: the child's copy of the waiting
  -- call is the parent's, so the child may not use that client at all.
  it("a child forked by a hook while a call waits cannot use that client; the parent's call completes", function()
    local ok, log = util.make("hooks-module")
    assert(ok, "make hooks-module failed:\n" .. log)
    local hooks = assert(package.loadlib(util.build_dir() .. "/spec/hooks.so", "luaopen_hooks"))()
    server:script { { delay_ms = 400, passthrough = true } }
    local child
    hooks.arm(0.1, function()
      child = start_child(function()
        local called, err = pcall(client.chat.completions.retrieve, "chatcmpl-abc123")
        return tostring(called) .. " " .. tostring(err)
      end)
    end)
    local mine = retrieve()
    assert.is_not_nil(child)
    local how, status, report = child.finish()
    assert.are.same({ "exited", 0 }, { how, status }, report)
    -- raised where the Lua layer calls the C core: the position left out
    assert.are.equal("false a call made on this client before a fork, by another process, still waits here (it ran "
      .. "the debug hook that forked): the client cannot be used until that call returns",
      (report:gsub("^false lua/openai/[%w_/]+%.lua:%d+: ", "false ")))
    assert.are.equal(GOLDEN, mine)
    assert.are.same({ requests = 1, connections = 1 }, server:stats())
  end)

  describe("over TLS", function()
    local missing = tls.missing()
    if missing then
      pending(missing)
      return
    end
    local dir, front, certificate
    setup(function()
      dir = tls.tempdir()
      certificate = tls.certificate(dir, "server")
      front = tls.start { dir = dir, cert = certificate.cert, key = certificate.key,
                          port = tonumber(server.base_url:match(":(%d+)/v1$")) }
    end)
    teardown(function()
      if front then front:stop() end
      tls.remove(dir)
    end)

    -- libcurl's cleanup of a TLS connection writes a close_notify on the
    -- socket (and reads it first): done in the child, the server would end
    -- the parent's connection.
    it("closing the client and a stream in the child leaves the parent's connection alone", function()
      local secure = openai.new { api_key = KEY, base_url = front.url .. "/v1", max_retries = 0, timeout = 3,
                                  ca_file = certificate.cert }
      assert.are.equal(GOLDEN, describe_completion(secure.chat.completions.retrieve("chatcmpl-abc123")))
      server:script { { status = 200, headers = { ["content-type"] = "text/event-stream" }, sse_end = "finish",
                        sse = { 'data: {"n":1}\n\n', { data = 'data: {"n":2}\n\n', delay_ms = 300 } } } }
      local stream = assert(secure.chat.completions.create {
        model = "m", stream = true, messages = { { role = "user", content = "hi" } } })
      assert.are.equal(1, assert(stream:next()).n)
      local how, status, report = in_child(function()
        stream:close()
        secure:close()
        return tostring(secure)
      end)
      assert.are.same({ "exited", 0 }, { how, status }, report)
      assert.are.equal("openai.Client (" .. front.url .. "/v1) closed", report)
      local chunk, err = stream:next()
      assert.is_nil(err)
      assert.are.equal(2, chunk.n)
      assert.are.same({ nil, nil }, { stream:next() })
      assert.are.equal(GOLDEN, describe_completion(secure.chat.completions.retrieve("chatcmpl-abc123")))
      secure:close()
      -- one TLS connection (one connection from stunnel to the mock) all along
      assert.are.same({ 1, 1, 1 }, connections(server))
    end)
  end)
end)
