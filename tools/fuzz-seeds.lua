-- (Re)writes the seed corpora of the fuzz targets, fuzz/corpus/<target>/,
-- from the project's own fixtures plus small hand-written samples.
--
--   lua5.4 tools/fuzz-seeds.lua
--
-- Seeds are named seed-*; regression inputs found by fuzzing are kept next
-- to them as regress-* and are never touched here.
local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(dir, name, data)
  os.execute("mkdir -p " .. dir)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(data)
  f:close()
end

local function clear(dir)
  os.execute("mkdir -p " .. dir .. " && rm -f " .. dir .. "/seed-*")
end

local function fixtures()
  local list = {}
  local p = io.popen("ls spec/fixtures/*.json mock/fixtures/*.json 2>/dev/null")
  for path in p:lines() do list[#list + 1] = path end
  p:close()
  table.sort(list)
  return list
end

-- JSON: every fixture, and the corners the codec's rules are about.
local json_samples = {
  numbers = '[0,-0,1,-1,9223372036854775807,-9223372036854775808,9223372036854775808,' ..
            '-9223372036854775809,4944116822809979520,1.0,-0.0,0.1,1e300,1e-320,5e-324,1E2,2.5e-1,1e999]',
  strings = '["","a\\"b\\\\c\\/d\\b\\f\\n\\r\\t","\\u0000x","\\u00e9\\u2014","\\ud83d\\ude00",' ..
            '"\\ud800x","caf\195\169 \226\128\148 \240\159\145\139"]',
  nulls = '{"a":null,"b":[null,null],"c":{}}',
  empties = '[[],{},[[]],[{}],{"":[]}]',
  duplicates = '{"k":1,"k":2,"k":{"k":[3]}}',
  scalar_true = "true",
  scalar_null = " null ",
  deep = string.rep("[", 60) .. "1" .. string.rep("]", 60),
  deep_objects = string.rep('{"a":', 40) .. "0" .. string.rep("}", 40),
  invalid_trailing = '{"a":1}x',
  invalid_eof = '{"a":[1,2',
  invalid_utf8 = '"\255\254"',
  whitespace = ' \t\r\n{ "a" : [ 1 , 2 ] } \n',
}

local function seed_json(target)
  local dir = "fuzz/corpus/" .. target
  clear(dir)
  for _, path in ipairs(fixtures()) do
    write(dir, "seed-" .. path:gsub("^spec/", ""):gsub("/", "-"), read(path))
  end
  local names = {}
  for name in pairs(json_samples) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do write(dir, "seed-" .. name .. ".json", json_samples[name]) end
end

-- SSE: flags byte (bits 0-2 cuts, bit 3 small limit from the next byte,
-- bit 4 byte by byte), two bytes per cut, then the stream.
local function chunk_event(content)
  return 'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":' ..
         '{"content":' .. content .. '},"finish_reason":null}]}\n\n'
end

local sse_samples = {
  chat = chunk_event('"Hello"') .. chunk_event('" world"') .. "data: [DONE]\n\n",
  crlf = "event: message\r\ndata: a\r\ndata: b\r\n\r\n: comment\r\n\r\ndata: [DONE]\r\n\r\n",
  cr_only = "data: one\rdata: two\r\rdata: three\r\r",
  named = "event: error\ndata: {\"error\":{\"message\":\"boom\"}}\n\n",
  fields = "id: 7\nretry: 1000\nunknown: x\ndata\ndata:\ndata:  two spaces\nevent\n\n",
  unterminated = "data: {\"partial\":true}",
  comments = ": keep-alive\n\n: another\ndata: x\n\n",
}

local function u16(n)
  return string.char(n >> 8 & 255, n & 255)
end

local function seed_sse()
  local dir = "fuzz/corpus/sse"
  clear(dir)
  local names = {}
  for name in pairs(sse_samples) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local text = sse_samples[name]
    local n = #text
    write(dir, "seed-" .. name .. "-whole", "\0" .. text)
    write(dir, "seed-" .. name .. "-cut3", "\3" .. u16(n // 4) .. u16(n // 2) .. u16(n - 1) .. text)
    write(dir, "seed-" .. name .. "-bytes", "\16" .. text)
    write(dir, "seed-" .. name .. "-limit", "\9" .. "\12" .. u16(n // 2) .. text)
  end
end

-- http_head: the input is the head, as a cosocket transport reads it.
local http_head_samples = {
  openai = "HTTP/1.1 200 OK\r\nDate: Tue, 01 Jul 2025 10:00:00 GMT\r\n" ..
           "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n" ..
           "openai-processing-ms: 412\r\nx-request-id: req_0123456789abcdef\r\n" ..
           "x-ratelimit-remaining-tokens: 149984\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\n\r\n",
  stream = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n\r\n",
  lf_only = "HTTP/1.0 429 Too Many Requests\nRetry-After: 2\nretry-after-ms: 1500\n\n",
  no_reason = "HTTP/1.1 204\r\nX-Empty:\r\nX-Blanks: \t spaced \t \r\n",
  repeats = "HTTP/1.1 200 OK\r\nVary: a\r\nvary: b\r\nVARY: c\r\n\r\n",
  folding = "HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\n\r\n",
  bare_cr = "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
  nul = "HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n",
  trailing = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
  bad_name = "HTTP/1.1 200 OK\r\nX A: b\r\n: c\r\nno colon\r\n\r\n",
  bad_status = "HTTP/2 200 OK\r\n\r\n",
  unterminated = "HTTP/1.1 200 OK\r\nX-A: b",
}

-- url: the input is the path parameter / component as it is, and also the
-- bytes the query table is built from.
local url_samples = {
  id = "chatcmpl-abc123",
  slash = "a/b?c#d%e f",
  dots = "..",
  unicode = "caf\195\169 \226\128\148",
  controls = "\0\1\r\n\t\127\255",
  reserved = "!$&'()*+,;=:@[]{}|\\^`\"<>",
  query = "\5\3abc\8\5\2x\0\1y\3\1\2k1\0\4\0",
}

-- A target whose input is a sample as it is.
local function seed_plain(target, samples)
  local dir = "fuzz/corpus/" .. target
  clear(dir)
  for name, text in pairs(samples) do write(dir, "seed-" .. name, text) end
end

seed_json("json_decode")
seed_json("json_roundtrip")
seed_sse()
seed_plain("http_head", http_head_samples)
seed_plain("url", url_samples)
print("fuzz seeds written to fuzz/corpus/")
