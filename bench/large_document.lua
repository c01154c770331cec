-- A deterministic ~205 KB chat.completion with logprobs: the "large" body of
-- `make bench`. Written as JSON text directly (no encoder of the project is
-- involved), so every run and every branch gets the same bytes.
--
-- Shape: one choice whose logprobs.content is an array of token objects
-- { token, logprob, bytes, top_logprobs = { {token, logprob, bytes}, ... } },
-- logprobs printed with 8 significant digits (-0.0012345678, -1.2159517e-05),
-- a message content and two long strings with escapes (\n, \", \\, \u00e9,
-- emoji both as raw UTF-8 and as a \ud83d\ude00 surrogate pair), and the seed
-- of the golden fixture (4944116822809979520, exact only as an integer).
--
--   lua5.4 bench/large_document.lua [FILE]   -- writes it (default: stdout)
--   require("bench.large_document")()       -- returns it as a string
local concat, format, byte = table.concat, string.format, string.byte

-- Tokens as JSON text and as the bytes they decode to.
local VOCABULARY = {
  { json = "Hello", raw = "Hello" },
  { json = ",", raw = "," },
  { json = " world", raw = " world" },
  { json = " the", raw = " the" },
  { json = " of", raw = " of" },
  { json = " circuits", raw = " circuits" },
  { json = " hum", raw = " hum" },
  { json = "\\n", raw = "\n" },
  { json = " \\\"quoted\\\"", raw = " \"quoted\"" },
  { json = " back\\\\slash", raw = " back\\slash" },
  { json = " caf\\u00e9", raw = " caf\xC3\xA9" },
  { json = " na\xC3\xAFve", raw = " na\xC3\xAFve" },
  { json = " \xF0\x9F\x98\x80", raw = " \xF0\x9F\x98\x80" },
  { json = " \\ud83d\\ude00", raw = " \xF0\x9F\x98\x80" },
  { json = " \xE2\x80\x94", raw = " \xE2\x80\x94" },
  { json = "\\t", raw = "\t" },
  { json = " learning", raw = " learning" },
  { json = " patterns", raw = " patterns" },
  { json = " in", raw = " in" },
  { json = " silence", raw = " silence" },
  { json = ".", raw = "." },
  { json = " Future", raw = " Future" },
  { json = "'s", raw = "'s" },
  { json = " quiet", raw = " quiet" },
  { json = " spark", raw = " spark" },
}

local TOKENS = 840         -- entries of logprobs.content: about 205 KB in all
local TOP = 2              -- top_logprobs per token

-- A 64-bit linear congruential generator (wraps like Lua 5.4 integers do).
local function lcg(seed)
  local state = seed
  return function(n)
    state = state * 6364136223846793005 + 1442695040888963407
    return ((state >> 33) % n) + 1
  end
end

local function bytes_of(raw)
  local out = {}
  for i = 1, #raw do out[i] = byte(raw, i) end
  return "[" .. concat(out, ",") .. "]"
end

local function token_object(entry, logprob, top)
  local parts = { '{"token":"', entry.json, '","logprob":', logprob, ',"bytes":', bytes_of(entry.raw) }
  if top then
    parts[#parts + 1] = ',"top_logprobs":[' .. concat(top, ",") .. "]"
  end
  parts[#parts + 1] = "}"
  return concat(parts)
end

local function generate()
  local rand = lcg(4944116822809979520)
  -- -m * 10^-e with m in [1, 10) to 8 digits: -0.0012345678, -1.2159517e-05
  local function logprob()
    local mantissa = 1 + (rand(90000000) - 1) / 10000000
    local exponent = rand(8) - 1
    return format("%.8g", -mantissa * 10.0 ^ -exponent)
  end
  local content, text = {}, {}
  for i = 1, TOKENS do
    local entry = VOCABULARY[rand(#VOCABULARY)]
    text[i] = entry.json
    local top = {}
    for t = 1, TOP do
      top[t] = token_object(t == 1 and entry or VOCABULARY[rand(#VOCABULARY)], logprob())
    end
    content[i] = token_object(entry, logprob(), top)
  end
  local message = concat(text)
  local note = concat({
    "Line one\\nLine \\\"two\\\" with a back\\\\slash,\\ttab, caf\\u00e9 and caf\xC3\xA9, ",
    "\xF0\x9F\x98\x80 and \\ud83d\\ude00, a dash \xE2\x80\x94 and \\u2014; ",
  }):rep(24)
  return concat({
    '{"id":"chatcmpl-large","object":"chat.completion","created":1738960610,',
    '"model":"gpt-4o-2024-08-06","seed":4944116822809979520,',
    '"system_fingerprint":"fp_50cad350e4","service_tier":"default",',
    '"metadata":{"note":"', note, '","empty":{},"list":[]},',
    '"choices":[{"index":0,"message":{"role":"assistant","content":"', message,
    '","refusal":null,"tool_calls":null},',
    '"logprobs":{"content":[', concat(content, ","), '],"refusal":null},',
    '"finish_reason":"stop"}],',
    '"usage":{"prompt_tokens":13,"completion_tokens":', tostring(TOKENS),
    ',"total_tokens":', tostring(TOKENS + 13), ',"prompt_tokens_details":{"cached_tokens":0},',
    '"completion_tokens_details":{"reasoning_tokens":0}},',
    '"summary":"', note, '"}\n',
  })
end

if arg and arg[0] and arg[0]:match("large_document%.lua$") then
  local text = generate()
  if arg[1] then
    local f = assert(io.open(arg[1], "wb"))
    assert(f:write(text))
    assert(f:close())
  else
    io.write(text)
  end
end

return generate
