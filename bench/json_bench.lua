-- JSON codec benchmark: openai.json.decode/encode against lua-cjson's
-- cjson.decode/encode, in one Lua 5.4 process, on the golden chat completion
-- (spec/fixtures/chatcmpl-abc123.json) and on the ~205 KB completion with
-- logprobs of bench/large_document.lua (the "large" body of the HTTP bench).
--
-- Rounds are interleaved (round 1: every document x operation x codec, then
-- round 2, ...), each measurement runs for SECONDS of process CPU time
-- (os.clock, so time the process spends descheduled by other work on the
-- machine does not count), and the median of the rounds is reported with
-- openai / cjson as a ratio. The goals: decode >= 1.5 x cjson and
-- encode >= 1 x cjson, on both documents.
--
-- Each codec encodes what it decoded itself (cjson's tables hold seed as a
-- float and print numbers with 14 significant digits, so its output is
-- lossy; openai's is exact).
--
--   lua5.4 bench/json_bench.lua [SECONDS [ROUNDS]]   (defaults: 0.6 s, 3 rounds)
-- Run from the repository root after `make` (build/openai/core.so).
package.cpath = "build/?.so;" .. package.cpath
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path

local openai = require("openai")
local cjson = require("cjson")
local large_document = require("bench.large_document")
local read_file = require("spec.helpers.util").read_file

local SECONDS = tonumber(arg and arg[1]) or 0.6
local ROUNDS = tonumber(arg and arg[2]) or 3

local clock, format, sort, floor = os.clock, string.format, table.sort, math.floor
local collectgarbage = collectgarbage

-- Calls fn in batches until `seconds` of CPU time have passed; returns
-- calls per second. The batch size is chosen so that reading the clock
-- costs nothing measurable (a batch takes about 5 ms).
local function rate(fn, seconds)
  fn() -- warm up
  local batch, t0 = 1, clock()
  while clock() - t0 < 0.005 do
    for _ = 1, batch do fn() end
    batch = batch * 2
  end
  collectgarbage()
  local calls = 0
  local start = clock()
  local elapsed
  repeat
    for _ = 1, batch do fn() end
    calls = calls + batch
    elapsed = clock() - start
  until elapsed >= seconds
  return calls / elapsed
end

local function median(list)
  local copy = {}
  for i = 1, #list do copy[i] = list[i] end
  sort(copy)
  local n = #copy
  if n % 2 == 1 then return copy[(n + 1) // 2] end
  return (copy[n // 2] + copy[n // 2 + 1]) / 2
end

local function ops(value)
  if value >= 100000 then return format("%.0f", value / 1000) .. "k" end
  if value >= 10000 then return format("%.1f", value / 1000) .. "k" end
  return format("%.0f", value)
end

local documents = {
  { name = "golden `chatcmpl-abc123`", text = read_file("spec/fixtures/chatcmpl-abc123.json") },
  { name = "large, logprobs", text = large_document() },
}
for _, doc in ipairs(documents) do
  doc.name = doc.name .. format(" (%d B)", #doc.text)
end

local codecs = {
  { name = "openai.json", decode = openai.json.decode, encode = openai.json.encode },
  { name = "cjson", decode = cjson.decode, encode = cjson.encode },
}

-- Inputs of each measurement, and a check that both codecs read the document.
local cases = {}
for _, doc in ipairs(documents) do
  for _, op in ipairs({ "decode", "encode" }) do
    local case = { doc = doc, op = op, rates = {} }
    for c, codec in ipairs(codecs) do
      local decode, encode = codec.decode, codec.encode
      local text = doc.text
      local value = assert(decode(text))
      assert(value.object == "chat.completion", codec.name .. " misread " .. doc.name)
      if op == "decode" then
        case[c] = function() decode(text) end
      else
        case[c] = function() encode(value) end
      end
      case.rates[c] = {}
    end
    cases[#cases + 1] = case
  end
end

print(format("%s; lua-cjson %s; %d rounds of %.2f s CPU time per measurement, interleaved",
  _VERSION, tostring(cjson._VERSION), ROUNDS, SECONDS))
local started = clock()
for round = 1, ROUNDS do
  for _, case in ipairs(cases) do
    -- Alternate which codec goes first from round to round.
    for k = 0, #codecs - 1 do
      local c = (round + k - 1) % #codecs + 1
      local r = case.rates[c]
      r[#r + 1] = rate(case[c], SECONDS)
    end
  end
end

print()
print("| document | operation | openai.json ops/s | lua-cjson ops/s | openai / cjson | goal |")
print("|---|---|--:|--:|--:|---|")
for _, case in ipairs(cases) do
  local ours, theirs = median(case.rates[1]), median(case.rates[2])
  local goal = case.op == "decode" and 1.5 or 1.0
  local ratio = ours / theirs
  print(format("| %s | %s | %s (%.1f µs) | %s (%.1f µs) | **%.2f×** | ≥ %.1f×: %s |",
    case.doc.name, case.op, ops(ours), 1e6 / ours, ops(theirs), 1e6 / theirs, ratio, goal,
    ratio >= goal and "met" or "not yet"))
end
print(format("\n(medians of %d rounds; µs per call in brackets; %.0f s in all)", ROUNDS, floor(clock() - started + 0.5)))
