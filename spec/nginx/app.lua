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

-- A content handler: the call's fields, then the runtime and the worker.
function app.retrieve()
  ngx.print(retrieve())
  ngx.say("runtime=", jit and jit.version or _VERSION)
  ngx.say("worker=", ngx.worker.pid())
end

return app
