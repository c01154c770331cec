-- One workload of tools/bench-callgrind.sh, run N times after one warm-up
-- call: under callgrind, the difference between two runs with different N
-- divided by the difference of N is the instruction count of one call, with
-- start-up and set-up cancelled out.
--   lua5.4 bench/callgrind_workload.lua WORKLOAD N [BASE_URL]
-- (BASE_URL defaults to $BENCH_BASE_URL)
-- WORKLOAD:
--   retrieve-small, retrieve-large  client.chat.completions.retrieve of the
--                                   golden completion / the large one from
--                                   the nginx of BASE_URL
--   tasks16-small                   the golden retrieve, 16 tasks in flight
--                                   (N calls in all; N a multiple of 16)
--   decode-small, encode-small, decode-large, encode-large
--                                   openai.json on the golden / large document
--   cjson-decode-small ... cjson-encode-large   the same with lua-cjson
package.cpath = "build/?.so;" .. package.cpath
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path

local workload, n, base_url = arg[1], tonumber(arg[2]), arg[3] or os.getenv("BENCH_BASE_URL")
if not (workload and n) then
  io.stderr:write("usage: lua5.4 bench/callgrind_workload.lua WORKLOAD N [BASE_URL]\n")
  os.exit(2)
end

if workload == "tasks16-small" then
  assert(base_url, "retrieve workloads need BASE_URL")
  local openai = require("openai")
  local client = openai.new { api_key = "sk-bench-0123456789", base_url = base_url, max_retries = 0 }
  local retrieve = client.chat.completions.retrieve
  local function calls(count)
    for _ = 1, count do
      local cc, err = retrieve("chatcmpl-abc123")
      if cc == nil or cc.seed ~= 4944116822809979520 then error("bad response: " .. tostring(err)) end
    end
  end
  local function fan_out(count) -- count calls by 16 tasks
    openai.run(function()
      local started = {}
      for i = 1, 16 do started[i] = openai.spawn(calls, count // 16) end
      for i = 1, 16 do started[i]:result() end
    end)
  end
  fan_out(16) -- warm up: 16 connections
  fan_out(n)
  os.exit(0)
end

local call
local kind, size = workload:match("^retrieve%-(%a+)$")
if kind then
  assert(base_url, "retrieve workloads need BASE_URL")
  local openai = require("openai")
  local client = openai.new { api_key = "sk-bench-0123456789", base_url = base_url, max_retries = 0 }
  local retrieve = client.chat.completions.retrieve
  local id = kind == "small" and "chatcmpl-abc123" or "large"
  call = function()
    local cc, err = retrieve(id)
    if cc == nil or cc.seed ~= 4944116822809979520 then error("bad response: " .. tostring(err)) end
  end
else
  local codec, op
  local rest = workload:match("^cjson%-(.*)$")
  if rest then
    codec = require("cjson")
  else
    codec, rest = require("openai").json, workload
  end
  op, size = rest:match("^(%a+)%-(%a+)$")
  local text
  if size == "small" then
    text = require("spec.helpers.util").read_file("spec/fixtures/chatcmpl-abc123.json")
  elseif size == "large" then
    text = require("bench.large_document")()
  end
  if not (codec and text and (op == "decode" or op == "encode")) then error("unknown workload " .. workload) end
  local decode, encode = codec.decode, codec.encode
  local value = decode(text)
  if op == "decode" then
    call = function() decode(text) end
  else
    call = function() encode(value) end
  end
end

call() -- warm up
for _ = 1, n do call() end
