-- What spec/lua54/nginx_spec.lua runs inside nginx: a client made by
-- init_by_lua, in the master process, and used after nginx has forked its
-- workers, by init_worker_by_lua and by content handlers. With the
-- automatic transport a content handler's call goes over cosockets and the
-- init phase's over libcurl; with transport = "curl" every call blocks its
-- worker until the response is there.
local openai = require("openai")
local golden = require("spec.helpers.golden")

local app = {}

local client

local function describe(cc, err)
  return golden.fields(openai, cc, err)
end

local function retrieve()
  return describe(client.chat.completions.retrieve("chatcmpl-abc123"))
end

-- init_by_lua: the client, and with `call` a first call from the master,
-- which leaves a pooled connection for the workers to inherit.
function app.init(base_url, api_key, call, transport)
  client = openai.new { api_key = api_key, base_url = base_url, max_retries = 0, timeout = 5, transport = transport }
  if call then
    local text = retrieve()
    if text:find("^error: ") then error("init_by_lua: " .. text) end
  end
end

-- init_worker_by_lua: one call as each worker starts, written to
-- DIR/worker-<pid>.txt (whole: it gets that name once written).
function app.worker_call(dir)
  local ok, text = pcall(retrieve)
  if not ok then text = "raised: " .. tostring(text) end
  local path = dir .. "/worker-" .. ngx.worker.pid() .. ".txt"
  local f = assert(io.open(path .. ".part", "w"))
  f:write(text)
  f:close()
  assert(os.rename(path .. ".part", path))
end

-- The call's fields, as text (for light threads).
app.retrieve_text = retrieve

-- Run by ngx.run_worker_thread in a Lua VM of its own: a client made
-- there, with the automatic transport, and one call.
function app.in_thread(base_url, api_key)
  local thread_client = openai.new { api_key = api_key, base_url = base_url, max_retries = 0, timeout = 5 }
  return describe(thread_client.chat.completions.retrieve("chatcmpl-abc123"))
end

-- A content handler using openai's tasks, which inside nginx are light
-- threads: four retrieves spawned at once, their results in order; then a
-- task whose error result() raises again, and what poll() counts.
function app.tasks()
  local started = {}
  for i = 1, 4 do started[i] = openai.spawn(retrieve) end
  ngx.say("running=", openai.poll(0), " fd=", tostring(openai.pollfd()), " timeout=", tostring(openai.timeout()))
  for i = 1, 4 do ngx.print(started[i]:result()) end
  local failing = openai.spawn(function()
    local _, err = client.chat.completions.retrieve("chatcmpl-missing")
    error(err) -- result() raises the same error object
  end)
  local ok, err = pcall(failing.result, failing)
  ngx.say("raised=", tostring(ok), " ", err.name, " ", tostring(err.status), " ", tostring(failing))
  ngx.say("ran=", openai.run(function(a, b) return a + b end, 20, 22), " running=", openai.poll(0))
end

-- A content handler that opens a stream in a task, cancels the task once
-- the first chunk arrived, and says what result() gives then.
function app.cancel_stream()
  local first = false
  local task = openai.spawn(function()
    local stream = assert(client.chat.completions.create {
      model = "gpt-4o-mini", stream = true, messages = { { role = "user", content = "hi" } } })
    for _ in stream do first = true end
    return "read to the end"
  end)
  while not first and not task:done() do openai.poll(0.01) end
  ngx.say("first=", tostring(first))
  task:cancel()
  task:cancel() -- idempotent
  local value, err = task:result()
  ngx.say(tostring(value), " ", err.name, " ", err.cause, " ", tostring(task), " running=", openai.poll(0))
end

-- A content handler: the call's fields, then the runtime and the worker.
function app.retrieve()
  ngx.print(retrieve())
  ngx.say("runtime=", jit and jit.version or _VERSION)
  ngx.say("worker=", ngx.worker.pid())
end

return app
