-- The streaming server of `make bench-concurrency`, run by nginx's Lua
-- module (tools/lib/servers.sh, `nginx_start DIR CPU sse`):
--   POST /v1/chat/completions   a chat completion stream in the API's chunk
--       format: a first chunk with the role, X-Bench-Chunks content chunks
--       (default 20), a last one with finish_reason, then data: [DONE];
--       each after ngx.sleep(X-Bench-Interval) (seconds, default 0.05),
--       sent at once (ngx.flush(true)). The request body is read, not
--       checked.
--   GET /__streams              "<open> <most open at once> <ended> <events sent>"
--   GET /__streams?reset=1      the same, then all four set to 0
-- The counters live in the shared dict "streams" (lua_shared_dict).
local streams = ngx.shared.streams

if ngx.var.uri == "/__streams" then
  local open, max, ended, events = streams:get("open") or 0, streams:get("max") or 0,
    streams:get("ended") or 0, streams:get("events") or 0
  if ngx.var.arg_reset then
    for _, key in ipairs { "open", "max", "ended", "events" } do streams:set(key, 0) end
  end
  ngx.header.content_type = "text/plain"
  ngx.say(open, " ", max, " ", ended, " ", events)
  return
end

ngx.req.read_body()
local chunks = tonumber(ngx.var.http_x_bench_chunks) or 20
local interval = tonumber(ngx.var.http_x_bench_interval) or 0.05

local open = streams:incr("open", 1, 0)
if open > (streams:get("max") or 0) then streams:set("max", open) end -- one worker: no race

local HEAD = 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,'
  .. '"model":"gpt-4o-mini","system_fingerprint":"fp_bench","choices":[{"index":0,"delta":'
local function chunk(delta, finish)
  return HEAD .. delta .. ',"logprobs":null,"finish_reason":' .. finish .. "}]}\n\n"
end

ngx.header.content_type = "text/event-stream"
ngx.header.cache_control = "no-cache"
local function send(event)
  ngx.print(event)
  local ok = ngx.flush(true)
  streams:incr("events", 1, 0)
  return ok
end

local ok = send(chunk('{"role":"assistant","content":""}', "null"))
for i = 1, chunks do
  if not ok then break end
  ngx.sleep(interval)
  ok = send(chunk('{"content":"token ' .. i .. ' "}', "null"))
end
if ok then
  ngx.sleep(interval)
  ok = send(chunk("{}", '"stop"'))
end
if ok then send("data: [DONE]\n\n") end
streams:incr("open", -1)
if ok then streams:incr("ended", 1, 0) end
