-- What the nginx under test runs for tools/bench-openresty.sh: the same
-- retrieve of the golden completion made three ways from a content handler.
--   blocking(base)  libcurl in the worker (transport = "curl"): the worker
--                   does nothing else until the answer is there
--   thread(base)    the same libcurl call in nginx's thread pool
--                   (ngx.run_worker_thread), in that thread's own Lua VM
--   cosocket(base)  the automatic transport: cosockets in a content handler
-- Each answers 200 and the completion's id, or 502 and why.
local openai = require("openai")

local app = {}

local ID = "chatcmpl-abc123"
local POOL = "openai_bench" -- the thread_pool directive's name

-- One client per Lua VM and transport, made on first use: a worker's VM,
-- or a pool thread's (each thread runs its own VM, which keeps its
-- modules, and so this client and its connection, between calls).
local clients = {}

local function retrieve(base_url, transport)
  local key = transport or "automatic"
  local client = clients[key]
  if client == nil then
    client = openai.new { api_key = "sk-bench", base_url = base_url, max_retries = 0, timeout = 10,
                          transport = transport }
    clients[key] = client
  end
  local cc, err = client.chat.completions.retrieve(ID)
  if cc == nil then return nil, tostring(err) end
  return cc.id
end

local function answer(id, err)
  if id ~= ID then
    ngx.status = 502
    ngx.say("failed: ", tostring(err or id))
    return
  end
  ngx.say(id)
end

function app.blocking(base_url)
  answer(retrieve(base_url, "curl"))
end

-- Runs in a pool thread: only plain values cross between the VMs.
function app.in_thread(base_url)
  return retrieve(base_url, "curl")
end

function app.thread(base_url)
  local ok, id, err = ngx.run_worker_thread(POOL, "bench.openresty.app", "in_thread", base_url)
  if not ok then return answer(nil, id) end
  answer(id, err)
end

function app.cosocket(base_url)
  answer(retrieve(base_url, nil))
end

return app
