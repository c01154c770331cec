-- The JSON codec of openai.core (src/codec/json_decode.c, src/codec/json_encode.c), as
-- every runtime has it. Numbers as Lua 5.3 and 5.4 type them:
-- spec/lua53/json_numbers_spec.lua; where numbers have no integer subtype:
-- spec/numbers_spec.lua.
-- Run: busted spec/json_spec.lua (.busted puts the build of the runtime on cpath).
local core = require("openai.core")
local openai = require("openai")
local util = require("spec.helpers.util")
local process = require("spec.helpers.process")

local decode, encode = core.json_decode, core.json_encode
local null, array_mt = core.null, core.array_mt

local spec_dir = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./")
local FIXTURE = spec_dir .. "fixtures/chatcmpl-abc123.json"

local read_file = util.read_file

local function same(a, b)
  return util.same(a, b, nil, true)
end

local function assert_same(a, b)
  local ok, why = same(a, b)
  assert(ok, why)
end

local function bytes(s)
  return (s:gsub(".", function(c) return string.format("%02X ", c:byte()) end))
end

local function arr(t)
  return setmetatable(t, array_mt)
end

-- encode must raise an error whose message contains `needle` (plain text).
local function encode_fails(value, needle)
  local ok, err = pcall(encode, value)
  assert(not ok, "encode should have failed (" .. needle .. ")")
  assert(type(err) == "string", "error is not a string")
  assert(err:find(needle, 1, true), "expected '" .. needle .. "' in: " .. err)
  return err
end

-- decode must return nil plus a one-line message containing `needle`.
local function decode_fails(text, needle, ...)
  local v, err = decode(text, ...)
  assert(v == nil, "decode should have failed for " .. string.format("%q", text:sub(1, 40)))
  assert(type(err) == "string", "no message")
  assert(not err:find("\n"), "message is not one line: " .. err)
  if needle then assert(err:find(needle, 1, true), "expected '" .. needle .. "' in: " .. err) end
  return err
end

-- Byte sequences that have the form of UTF-8 but are not UTF-8 in the
-- strict sense (RFC 3629).
local NOT_STRICT = {
  { "overlong C0 80 (U+0000)", "\192\128" },
  { "overlong C1 BF (U+007F)", "\193\191" },
  { "overlong E0 80 AF (U+002F)", "\224\128\175" },
  { "overlong E0 9F BF (U+07FF)", "\224\159\191" },
  { "overlong F0 80 80 80 (U+0000)", "\240\128\128\128" },
  { "overlong F0 8F BF BF (U+FFFF)", "\240\143\191\191" },
  { "surrogate ED A0 80 (U+D800)", "\237\160\128" },
  { "surrogate ED AF BF (U+DBFF)", "\237\175\191" },
  { "surrogate ED B0 80 (U+DC00)", "\237\176\128" },
  { "surrogate ED BF BF (U+DFFF)", "\237\191\191" },
  { "F4 90 80 80 (U+110000)", "\244\144\128\128" },
  { "F4 BF BF BF (U+13FFFF)", "\244\191\191\191" },
  { "lead F5", "\245\128\128\128" },
  { "lead F7", "\247\191\191\191" },
}

-- Not UTF-8 even in form. The third field is where the first bad byte is
-- in the sequence.
local NOT_UTF8 = {
  { "5-byte form F8", "\248\136\128\128\128", 0 },
  { "6-byte form FC", "\252\132\128\128\128\128", 0 },
  { "lead FE", "\254", 0 },
  { "lead FF", "\255", 0 },
  { "truncated C3", "\195", 0 },
  { "truncated E2 82", "\226\130", 0 },
  { "truncated F0 9F 98", "\240\159\152", 0 },
  { "truncated E2 82 then ASCII", "\226\130A", 0 },
  { "stray continuation 80", "\128", 0 },
  { "stray continuation BF", "\191", 0 },
  { "stray continuation after ASCII", "a\128", 1 },
  { "extra continuation after C3 A9", "\195\169\169", 2 },
  { "extra continuation after F0 9F 98 80", "\240\159\152\128\128", 4 },
}

-- The edges of each UTF-8 length and around the surrogates: all valid.
local BOUNDARIES = {
  { "U+007F", "\127" },
  { "U+0080", "\194\128" },
  { "U+07FF", "\223\191" },
  { "U+0800", "\224\160\128" },
  { "U+D7FF", "\237\159\191" },
  { "U+E000", "\238\128\128" },
  { "U+FFFF", "\239\191\191" },
  { "U+10000", "\240\144\128\128" },
  { "U+10FFFF", "\244\143\191\191" },
}

-- Values a decode builds: every scalar, string, array and object; keys not.
local function count_values(v)
  if type(v) ~= "table" then return 1 end
  local n = 1
  for _, child in pairs(v) do n = n + count_values(child) end
  return n
end

describe("json codec", function()
  describe("golden fixture chatcmpl-abc123.json", function()
    local text = read_file(FIXTURE)

    it("decodes with the documented types", function()
      local cc = assert(decode(text))
      assert.is_nil(getmetatable(cc))
      assert.are.equal("chat.completion", cc.object)
      -- exact on every runtime: an integer, or a boxed int64 beyond 2^53
      assert.are.equal("4944116822809979520", util.integer_text(cc.seed))
      assert.are.equal(openai.int64("4944116822809979520"), cc.seed)
      assert.are.equal("1738960610", util.integer_text(cc.created))
      assert.are.equal(1.0, cc.temperature)
      assert.are.equal(1.0, cc.top_p)
      assert.are.equal(0.0, cc.presence_penalty)
      assert.are.equal("31", util.integer_text(cc.usage.total_tokens))
      assert.are.equal(null, cc.tool_choice)
      local seen = {}
      for k in pairs(cc) do seen[k] = true end
      for _, k in ipairs({ "tool_choice", "input_user", "tools", "response_format" }) do
        assert.is_true(seen[k], k .. " must be present in pairs()")
      end
      assert.are.equal("table", type(cc.metadata))
      assert.is_nil(getmetatable(cc.metadata))
      assert.is_nil(next(cc.metadata))
      assert.are.equal(array_mt, getmetatable(cc.choices))
      assert.are.equal(1, #cc.choices)
      local msg = cc.choices[1].message
      assert.is_nil(getmetatable(msg))
      assert.are.equal(null, msg.tool_calls)
      assert.are.equal(null, cc.choices[1].logprobs)
      assert.is_truthy(msg.content:find("\226\128\148", 1, true)) -- U+2014
      assert.are.equal("Mind of circuits hum, \nLearning patterns in silence\226\128\148 \nFuture's quiet spark.",
        msg.content)
    end)

    it("re-encodes and decodes to identical values and types", function()
      local first = assert(decode(text))
      local json = encode(first)
      assert.is_falsy(json:find("[\n ]%s*\""), "output must be compact")
      assert.is_truthy(json:find('"seed":4944116822809979520', 1, true))
      -- 1.0 is the number 1 where numbers have no float subtype
      assert.is_truthy(json:find(util.has_integers and '"temperature":1.0,' or '"temperature":1,', 1, true))
      assert.is_truthy(json:find('"metadata":{}', 1, true))
      assert.is_truthy(json:find('"tool_choice":null', 1, true))
      local second = assert(decode(json))
      assert_same(first, second)
      assert.are.equal(json, encode(second))
    end)

    it("decodes unchanged under a value cap of exactly its size", function()
      local n = count_values(assert(decode(text)))
      assert.are.equal(32, n) -- as Python's json module counts it
      assert_same(decode(text), decode(text, nil, n))
      local v, err = decode(text, nil, n - 1)
      assert.is_nil(v)
      assert.are.equal("JSON has more than 31 values", err)
    end)
  end)

  describe("decoding numbers", function()
    it("keeps the sign of -0.0 and not of -0", function()
      assert.are.equal(-math.huge, 1 / decode("-0.0"))
      assert.are.equal(0, decode("-0"))
      assert.are.equal(math.huge, 1 / decode("-0"))
    end)

    it("a 400-digit integer becomes infinity, never clamped", function()
      assert.are.equal(math.huge, decode(string.rep("9", 400)))
      assert.are.equal(-math.huge, decode("-" .. string.rep("9", 400)))
      assert.are.equal(1e30, decode("1" .. string.rep("0", 30)))
    end)

    -- Most floats take a fast exact path (up to 19 digits, a power of ten up
    -- to 1e22), the rest strtod: both must give what strtod gives.
    it("rounds floats correctly: 20 000 random decimals agree with tonumber, bit for bit", function()
      local state = 42
      local function random(n) -- a deterministic Lehmer generator, exact in doubles: the same numbers every run
        state = state * 16807 % 2147483647
        return state % n
      end
      for _ = 1, 20000 do
        local digits = {}
        for i = 1, 1 + random(20) do digits[i] = ("%d"):format(random(10)) end
        local mantissa = table.concat(digits):gsub("^0+(%d)", "%1")
        local point = random(#mantissa + 1)
        local text = point > 0 and point < #mantissa and mantissa:sub(1, point) .. "." .. mantissa:sub(point + 1)
                     or mantissa .. ".0"
        if random(3) == 0 then text = text .. "e" .. (random(2) == 0 and "-" or "") .. random(40) end
        if random(2) == 0 then text = "-" .. text end
        local got, expected = decode(text), tonumber(text)
        -- equal, and a zero of the same sign: the same double
        assert(got == expected and (expected ~= 0 or 1 / got == 1 / expected), text)
      end
    end)

    it("rejects what JSON does not allow", function()
      for _, s in ipairs({ "01", "-", "1.", ".5", "+1", "1e", "0x10", "NaN", "Infinity", "-Infinity", "1.5e+" }) do
        decode_fails(s)
      end
    end)
  end)

  describe("decoding strings", function()
    it("handles every escape", function()
      assert.are.equal('"\\/\b\f\n\r\t', decode([["\"\\\/\b\f\n\r\t"]]))
      assert.are.equal("A\195\169\226\130\172", decode([["\u0041\u00e9\u20AC"]]))
    end)

    it("keeps embedded NULs", function()
      local s = decode([["a\u0000b"]])
      assert.are.equal(3, #s)
      assert.are.equal("a\0b", s)
    end)

    it("decodes surrogate pairs to 4-byte UTF-8", function()
      assert.are.equal("\240\159\152\128", decode([["\ud83d\ude00"]]))
      assert.are.equal("😀", decode([["\uD83D\uDE00"]]))
      assert.are.equal("x😀y", decode([["x\ud83d\ude00y"]]))
    end)

    -- A \u escape of a surrogate must be a high one followed by a low one:
    -- anything else would not be a character (nor UTF-8).
    it("a lone high surrogate escape fails the decode, whatever follows it", function()
      for text, at in pairs { [ [["\ud800"]] ] = 1, [ [["\ud800x"]] ] = 1, [ [["a\ud800bc"]] ] = 2,
                              [ [["\ud800\n"]] ] = 1, [ [["\ud800\u0041"]] ] = 1, [ [["\ud800\ud800"]] ] = 1,
                              [ [["\uDBFF\uE000"]] ] = 1, [ [["x\ud800\"]] ] = 2 } do
        assert.are.equal("invalid JSON: lone surrogate escape at byte " .. at, decode_fails(text))
      end
    end)

    it("a lone low surrogate escape fails the decode", function()
      assert.are.equal("invalid JSON: lone surrogate escape at byte 1", decode_fails([["\udc00"]]))
      assert.are.equal("invalid JSON: lone surrogate escape at byte 1", decode_fails([["\uDFFF"]]))
      assert.are.equal("invalid JSON: lone surrogate escape at byte 1", decode_fails([["\udc00\ud800"]]))
      assert.are.equal("invalid JSON: lone surrogate escape at byte 8", decode_fails([=[["ok","a\udc00"]]=]))
      assert.are.equal("invalid JSON: lone surrogate escape at byte 2", decode_fails([[{"\udc00":1}]]))
      -- a low surrogate after a complete pair is lone too
      assert.are.equal("invalid JSON: lone surrogate escape at byte 13", decode_fails([["\ud83d\ude00\ude00"]]))
    end)

    it("rejects overlong forms, surrogates and code points above U+10FFFF", function()
      for _, c in ipairs(NOT_STRICT) do
        local expected = "invalid JSON: invalid UTF-8 in string at byte 2" -- the sequence's first byte
        local v, err = decode('["' .. c[2] .. '"]')
        assert.is_nil(v, c[1])
        assert.are.equal(expected, err, c[1])
        v, err = decode('{"' .. c[2] .. '":1}')
        assert.is_nil(v, c[1] .. " (key)")
        assert.are.equal(expected, err, c[1] .. " (key)")
      end
      -- in a nested key and after an escape
      assert.are.equal("invalid JSON: invalid UTF-8 in string at byte 8",
        decode_fails('{"a":{"b\192\128":1}}'))
      assert.are.equal("invalid JSON: invalid UTF-8 in string at byte 3",
        decode_fails('"\\n\237\160\128"'))
    end)

    it("rejects truncated sequences and stray continuation bytes", function()
      for _, c in ipairs(NOT_UTF8) do
        local expected = "invalid JSON: invalid UTF-8 in string at byte " .. (2 + c[3])
        local v, err = decode('["' .. c[2] .. '"]')
        assert.is_nil(v, c[1])
        assert.are.equal(expected, err, c[1])
        v, err = decode('{"' .. c[2] .. '":1}')
        assert.is_nil(v, c[1] .. " (key)")
        assert.are.equal(expected, err, c[1] .. " (key)")
      end
    end)

    it("accepts the first and last character of every UTF-8 length", function()
      for _, c in ipairs(BOUNDARIES) do
        assert.are.equal(c[2], decode('"' .. c[2] .. '"'), c[1])
        local t = decode('{"' .. c[2] .. '":"x' .. c[2] .. '"}')
        assert.are.equal("x" .. c[2], t[c[2]], c[1])
      end
      assert.are.equal("\239\191\191", decode([["\uffff"]]))
      assert.are.equal("\244\143\191\191", decode([["\udbff\udfff"]]))
    end)

    -- the validator skips ASCII 8 bytes at a time: every alignment
    it("finds a bad sequence at any offset in long ASCII runs", function()
      for before = 0, 19 do
        for after = 0, 19 do
          local a, b = string.rep("a", before), string.rep("b", after)
          local good = a .. "\237\159\191" .. b .. "\194\128"
          assert.are.equal(good, decode('"' .. good .. '"'))
          local bad = a .. "\237\160\128" .. b
          assert.are.equal("invalid JSON: invalid UTF-8 in string at byte " .. (1 + before),
            decode_fails('"' .. bad .. '"'))
          bad = a .. "\194\128" .. b .. "\244\144\128\128"
          assert.are.equal("invalid JSON: invalid UTF-8 in string at byte " .. (1 + before + 2 + after),
            decode_fails('"' .. bad .. '"'))
        end
      end
    end)

    it("rejects invalid UTF-8 and raw control characters", function()
      decode_fails('"\255"', "UTF-8")
      decode_fails('"\195"', nil)
      decode_fails('"\195("', "UTF-8")
      decode_fails('"\226\130"', nil)
      decode_fails('"\128"', "UTF-8")
      decode_fails('"a\nb"', "invalid")
      decode_fails('"a\0b"', nil)
      decode_fails([["\x41"]], nil)
      decode_fails([["\u12"]], nil)
      decode_fails([["\u12G4"]], nil)
    end)

    -- Short strings come from a cache of the strings seen before, chosen by
    -- length and first and last bytes: strings alike in those must differ.
    it("tells apart short strings that share their length and ends", function()
      local a, b = "aaaaaaaaXaaaaaaaa", "aaaaaaaaYaaaaaaaa"
      for _ = 1, 3 do
        local t = decode('{"' .. a .. '":"' .. b .. '","' .. b .. '":"' .. a .. '","x":["abc","abd","ab","a\\u0062c"]}')
        assert.are.equal(b, t[a])
        assert.are.equal(a, t[b])
        assert.are.same({ "abc", "abd", "ab", "abc" }, t.x)
      end
      local long = string.rep("z", 24) .. "1"
      assert.are.equal(long, decode('"' .. long .. '"'))
      assert.are.equal(long:sub(1, 24), decode('"' .. long:sub(1, 24) .. '"'))
    end)

    it("passes non-ASCII text through", function()
      local s = "\226\128\148 \230\151\165\230\156\172 \240\159\152\128 \226\128\168 \127"
      assert.are.equal(s, decode('"' .. s .. '"'))
      assert.are.equal('"' .. s .. '"', encode(s))
    end)
  end)

  describe("decoding structure", function()
    it("null is core.null and the key stays", function()
      local t = decode('{"a":null,"b":[null,1,null]}')
      assert.are.equal(null, t.a)
      assert.is_true(rawget(t, "a") ~= nil)
      assert.are.equal(3, #t.b)
      assert.are.equal(null, t.b[1])
      assert.are.equal(null, t.b[3])
      assert.are.equal(null, decode("null"))
    end)

    it("arrays carry array_mt, objects no metatable", function()
      local t = decode('{"a":[],"o":{},"n":[[1],{"x":[2]}]}')
      assert.are.equal(array_mt, getmetatable(t.a))
      assert.is_nil(next(t.a))
      assert.is_nil(getmetatable(t.o))
      assert.is_nil(getmetatable(t))
      assert.are.equal(array_mt, getmetatable(t.n))
      assert.are.equal(array_mt, getmetatable(t.n[1]))
      assert.is_nil(getmetatable(t.n[2]))
      assert.are.equal(2, t.n[2].x[1])
      assert.are.equal(array_mt, getmetatable(decode("[]")))
    end)

    it("arrays are 1-based sequences", function()
      local t = decode('[10,"b",true,false,{"k":1},[2]]')
      assert.are.equal(6, #t)
      assert.are.equal(10, t[1])
      assert.are.equal("b", t[2])
      assert.is_true(t[3])
      assert.is_false(t[4])
      assert.is_nil(rawget(t, 0))
      assert.is_nil(rawget(t, 7))
    end)

    it("duplicate keys: the last wins", function()
      local t = decode('{"a":1,"a":2,"b":{"c":1},"b":{"d":2}}')
      assert.are.equal(2, t.a)
      assert.is_nil(t.b.c)
      assert.are.equal(2, t.b.d)
    end)

    it("keys keep embedded NULs and escapes", function()
      local t = decode('{"a\\u0000b":1,"\\u00e9":2,"":3}')
      assert.are.equal(1, t["a\0b"])
      assert.are.equal(2, t["\195\169"])
      assert.are.equal(3, t[""])
    end)

    it("top-level scalars", function()
      assert.are.equal("x", decode('"x"'))
      assert.is_true(decode("true"))
      assert.is_false(decode(" false "))
      assert.are.equal(7, decode("\n\t 7 \r\n"))
    end)

    it("accepts 1000 levels and rejects 1001", function()
      assert.is_table(decode(string.rep("[", 1000) .. string.rep("]", 1000)))
      local deep_obj = string.rep('{"a":', 999) .. "[]" .. string.rep("}", 999)
      assert.is_table(decode(deep_obj))
      local err = decode_fails(string.rep("[", 1001) .. string.rep("]", 1001), "JSON nested too deeply (limit 1000)")
      assert.are.equal("JSON nested too deeply (limit 1000)", err)
      decode_fails(string.rep('{"a":', 1001) .. "1" .. string.rep("}", 1001), "nested too deeply")
    end)

    it("honours max_depth", function()
      assert.is_table(decode("[[[1]]]", 3))
      decode_fails("[[[1]]]", "JSON nested too deeply (limit 2)", 2)
      assert.are.equal(5, decode("5", 1))
      assert.is_table(decode(string.rep("[", 5000) .. string.rep("]", 5000), 5000))
    end)

    it("rejects 200 000 levels quickly and cleanly", function()
      local t0 = os.clock()
      decode_fails(string.rep("[", 200000) .. string.rep("]", 200000), "nested too deeply")
      decode_fails(string.rep("[", 200000), "nested too deeply")
      decode_fails(string.rep('{"a":', 200000), "nested too deeply")
      -- with a raised limit it still fails cleanly (truncated input), no crash
      decode_fails(string.rep("[", 200000), nil, 300000)
      if not process.instrumented() then assert.is_true(os.clock() - t0 < 2, "too slow") end
    end)
  end)

  describe("value cap (max_values)", function()
    local function cap_fails(text, cap)
      local err = decode_fails(text, nil, nil, cap)
      assert.are.equal("JSON has more than " .. cap .. " values", err)
    end

    it("a scalar at the top level is one value", function()
      for _, text in ipairs({ "1", "1.5", '"s"', "true", "false", "null" }) do
        assert.is_not_nil(decode(text, nil, 1), text)
      end
      assert.are.equal("s", decode('"s"', nil, 1))
      assert.are.equal(null, decode("null", nil, 1))
      assert.is_table(decode("[]", nil, 1))
      assert.is_table(decode("{}", nil, 1))
    end)

    it("flat: exactly N values pass, N + 1 fail", function()
      for _, n in ipairs({ 2, 3, 10, 1000 }) do
        -- an array of n - 1 members is n values
        local text = "[" .. util.rep("0", n - 1, ",") .. "]"
        local t = decode(text, nil, n)
        assert.are.equal(n - 1, #t)
        cap_fails("[" .. util.rep("0", n, ",") .. "]", n)
      end
      assert.are.equal(3, #decode('["a",null,{}]', nil, 4))
      cap_fails('["a",null,{}]', 3)
      cap_fails("[1,2]", 1)
    end)

    it("nested: every array and object counts, keys do not", function()
      assert.is_table(decode("[[[]]]", nil, 3))
      cap_fails("[[[]]]", 2)
      assert.is_table(decode(string.rep("[", 500) .. string.rep("]", 500), nil, 500))
      cap_fails(string.rep("[", 501) .. string.rep("]", 501), 500)
      -- object, 1, object, null: 4 values and 3 keys
      local text = '{"a":1,"b":{"c":null}}'
      assert.are.equal(null, decode(text, nil, 4).b.c)
      cap_fails(text, 3)
      local keys = "{" .. util.rep('"k":1', 100, ",") .. "}"
      assert.are.equal(1, decode(keys, nil, 101).k)
      cap_fails(keys, 100)
      cap_fails('{"a":{},"b":{}}', 2)
    end)

    it("counts values, not bytes: a long string is one value", function()
      local long = string.rep("x", 100000)
      assert.are.equal(long, decode('["' .. long .. '"]', nil, 2)[1])
    end)

    it("stops building as soon as the cap is passed", function()
      local text = "[" .. util.rep("[]", 200000, ",") .. "]"
      collectgarbage()
      collectgarbage()
      -- decode returns, never raises: the collector is restarted whatever happens
      collectgarbage("stop")
      local before = collectgarbage("count")
      local t, err = decode(text, nil, 100)
      local capped = collectgarbage("count") - before
      local all = decode(text, nil, 200001)
      local full = collectgarbage("count") - before
      collectgarbage("restart")
      assert.is_nil(t)
      assert.are.equal("JSON has more than 100 values", err)
      assert.are.equal(200000, #all)
      -- 200 000 tables take megabytes; the first 100 a few kilobytes
      assert.is_true(full > 4096, "the measurement sees tables: " .. full .. " KB")
      assert.is_true(capped < 64, "built past the cap: " .. capped .. " KB")
    end)

    it("the default cap lets large documents through", function()
      local t = decode("[" .. util.rep("[]", 300000, ",") .. "]")
      assert.are.equal(300000, #t)
      assert.are.equal(300000, #decode("[" .. util.rep("[]", 300000, ",") .. "]", 2))
    end)

    it("the cap and the depth limit apply together", function()
      assert.are.equal("JSON nested too deeply (limit 2)", decode_fails("[[[]]]", nil, 2, 100))
      cap_fails("[[[]]]", 2)
      assert.are.equal("JSON has more than 2 values", decode_fails("[[[]]]", nil, 3, 2))
    end)
  end)

  describe("decode errors", function()
    it("empty and blank input", function()
      decode_fails("", "empty")
      decode_fails(" \n\t ", "empty")
    end)

    it("trailing garbage", function()
      local err = decode_fails("[1]x", "trailing garbage")
      assert.is_truthy(err:find("byte 3", 1, true) or err:find("byte 4", 1, true), err)
      decode_fails("[1] [2]", "trailing garbage")
      decode_fails("1 2", nil)
      decode_fails('{"a":1}}', nil)
      decode_fails("null x", nil)
    end)

    it("truncated input", function()
      local text = read_file(FIXTURE)
      for _, cut in ipairs({ 1, 2, 10, 100, math.floor(#text / 2), #text - 1 }) do
        decode_fails(text:sub(1, cut), nil)
      end
      decode_fails("[1,2", "premature EOF")
      decode_fails('"abc', nil)
      decode_fails('{"a"', nil)
      decode_fails('{"a":', nil)
      decode_fails("tru", nil)
    end)

    it("syntax errors name the reason and the byte offset", function()
      local err = decode_fails('{"a":1,}', "invalid JSON")
      assert.is_truthy(err:find("at byte %d+"), err)
      decode_fails("[1,]", nil)
      decode_fails("{a:1}", nil)
      decode_fails("{'a':1}", nil)
      decode_fails('{"a" 1}', nil)
      decode_fails("[1 2]", nil)
      decode_fails("// c\n1", nil)
      decode_fails("/* c */ 1", nil)
    end)

    it("argument checks raise", function()
      assert.has_error(function() decode() end)
      assert.has_error(function() decode({}) end)
      assert.has_error(function() decode("[]", 0) end)
      assert.has_error(function() decode("[]", -1) end)
      assert.has_error(function() decode("[]", 1.5) end)
      for _, bad in ipairs({ 0, -1, -2 ^ 53 }) do
        local ok, err = pcall(decode, "[]", nil, bad)
        assert.is_false(ok)
        assert.is_truthy(err:find("bad argument #3", 1, true), err)
        assert.is_truthy(err:find("(max_values must be a positive integer)", 1, true), err)
      end
      local ok, err = pcall(decode, "[]", nil, 1.5)
      assert.is_false(ok)
      assert.is_truthy(err:find("bad argument #3", 1, true), err)
      ok, err = pcall(decode, "[]", 1000, "many")
      assert.is_false(ok)
      assert.is_truthy(err:find("bad argument #3", 1, true), err)
      assert.is_false(pcall(decode, "[]", nil, {}))
      -- nil means the default; the largest integer means no practical cap
      assert.is_table(decode("[]", nil, nil))
      assert.is_table(decode("[[]]", 2, 2 ^ 53))
    end)
  end)

  describe("encoding", function()
    it("scalars", function()
      assert.are.equal("null", encode(nil))
      assert.are.equal("null", encode(null))
      assert.are.equal("true", encode(true))
      assert.are.equal("false", encode(false))
      assert.are.equal("0", encode(0))
      assert.are.equal("-17", encode(-17))
      assert.are.equal("9007199254740991", encode(9007199254740991))
      assert.are.equal("-9007199254740991", encode(-9007199254740991))
      assert.are.equal("4944116822809979520", encode(openai.int64("4944116822809979520")))
      assert.are.equal("0.1", encode(0.1))
      assert.are.equal("-1.5", encode(-1.5))
      assert.are.equal("1e+300", encode(1e300))
      assert.are.equal('""', encode(""))
      assert.has_error(function() encode() end)
    end)

    it("strings: escapes, no '/' escaping, NULs, non-ASCII", function()
      assert.are.equal([["a\"b\\c/d"]], encode('a"b\\c/d'))
      assert.are.equal([["\b\f\n\r\t"]], encode("\b\f\n\r\t"))
      assert.are.equal('"\\u0000\\u0001\\u001f\127"', encode("\0\1\31\127"))
      assert.are.equal('"\226\128\148"', encode("\226\128\148"))
      assert.are.equal('"\240\159\152\128"', encode("😀"))
      for i = 0, 127 do
        local s = string.char(i)
        assert.are.equal(s, decode(encode(s)))
      end
    end)

    it("strings: the first and last character of every UTF-8 length", function()
      for _, c in ipairs(BOUNDARIES) do
        assert.are.equal('"' .. c[2] .. '"', encode(c[2]), c[1])
        assert.are.equal('{"' .. c[2] .. '":"a' .. c[2] .. 'b"}', encode({ [c[2]] = "a" .. c[2] .. "b" }), c[1])
        local long = string.rep("x", 13) .. c[2] .. string.rep("y", 13)
        assert.are.equal(long, decode(encode(long)), c[1])
      end
    end)

    -- A reference for strings: valid UTF-8 as it is, '"', '\\' and the
    -- control characters escaped, DEL not.
    local SHORT_ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                            ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
    local function string_rule(s)
      return '"' .. s:gsub('[%z\1-\31"\\]', function(c)
        return SHORT_ESCAPES[c] or string.format("\\u%04x", c:byte())
      end) .. '"'
    end

    it("strings: every special byte at every offset of a 24-byte string", function()
      local specials = { '"', "\\", "\n", "\0", "\1", "\31", "\127", " ", "\195\169", "\226\128\148",
                         "\240\159\152\128", "\239\191\191" }
      for len = 0, 24 do
        for pos = 0, len do
          for _, c in ipairs(specials) do
            local s = string.rep("a", pos) .. c .. string.rep("b", len - pos)
            assert.are.equal(string_rule(s), encode(s), bytes(s))
            local two = c .. string.rep("x", pos) .. c
            assert.are.equal(string_rule(two), encode(two), bytes(two))
          end
          -- and a bad byte there fails, in a value and in a key
          local bad = string.rep("a", pos) .. "\255" .. string.rep("b", len - pos)
          encode_fails(bad, "invalid UTF-8 in string")
          encode_fails({ [bad] = 1 }, "invalid UTF-8 in object key")
          local cut = string.rep("a", pos) .. "\226\128"
          encode_fails({ x = cut }, "invalid UTF-8 in string at x")
        end
      end
    end)

    -- i / 2 as encode writes it: a float on 5.3+ ("1.0"), the number 1 elsewhere.
    local function half_text(i)
      if i % 2 == 1 then return ("%d.5"):format((i - 1) / 2) end
      return ("%d"):format(i / 2) .. (util.has_integers and ".0" or "")
    end

    it("objects and arrays of every size up to 200, in any insertion order", function()
      math.randomseed(99)
      for n = 1, 200 do
        local keys, obj, list, rlist, plain = {}, {}, arr({}), arr({}), {}
        for i = 1, n do keys[i] = string.format("k%d_%x", i, math.random(0, 0xFFFF)) end
        for i = 1, n do obj[keys[i]] = i % 3 == 0 and { v = i } or i end
        for i = 1, n do list[i] = i % 4 == 0 and arr({ i }) or i / 2 end
        for i = n, 1, -1 do rlist[i] = "s" .. i end -- filled backwards: the hash part
        for i = n, 1, -1 do plain[i] = i end
        local sorted = {}
        for i = 1, n do sorted[i] = keys[i] end
        table.sort(sorted)
        local parts = {}
        for i, k in ipairs(sorted) do
          local v = obj[k]
          parts[i] = '"' .. k .. '":' .. (type(v) == "table" and '{"v":' .. v.v .. "}" or tostring(v))
        end
        assert.are.equal("{" .. table.concat(parts, ",") .. "}", encode(obj))
        parts = {}
        for i = 1, n do parts[i] = i % 4 == 0 and "[" .. i .. "]" or half_text(i) end
        assert.are.equal("[" .. table.concat(parts, ",") .. "]", encode(list))
        parts = {}
        for i = 1, n do parts[i] = '"s' .. i .. '"' end
        assert.are.equal("[" .. table.concat(parts, ",") .. "]", encode(rlist))
        parts = {}
        for i = 1, n do parts[i] = tostring(i) end
        assert.are.equal("[" .. table.concat(parts, ",") .. "]", encode(plain))
        -- all of them nested in one another
        local text = encode({ obj = obj, list = arr({ list, rlist, plain, obj }) })
        assert.are.equal(text, encode(decode(text)))
      end
    end)

    it("objects have sorted keys, arrays keep order", function()
      assert.are.equal('{"a":1,"b":2,"c":3}', encode({ c = 3, a = 1, b = 2 }))
      assert.are.equal('{"":0,"A":1,"B":2,"a":3,"aa":4,"b":5,"\195\169":6}',
        encode({ b = 5, aa = 4, a = 3, B = 2, A = 1, [""] = 0, ["\195\169"] = 6 }))
      assert.are.equal('{"a":1,"a\\u0000":2}', encode({ ["a\0"] = 2, a = 1 }))
      assert.are.equal("[3,1,2]", encode({ 3, 1, 2 }))
      local big = {}
      for i = 1, 300 do big["k" .. string.format("%03d", 301 - i)] = i end
      local text = encode(big)
      assert.are.equal(text, encode(decode(text)))
      assert.is_truthy(text:find('^{"k001":300,"k002":299,'))
      -- deterministic across runs with different insertion orders
      local a, b = {}, {}
      for i = 1, 50 do a["x" .. i] = i end
      for i = 50, 1, -1 do b["x" .. i] = i end
      assert.are.equal(encode(a), encode(b))
    end)

    it("empty tables: {} object, array_mt array", function()
      assert.are.equal("{}", encode({}))
      assert.are.equal("[]", encode(setmetatable({}, array_mt)))
      assert.are.equal('{"a":[],"b":{}}', encode({ a = arr({}), b = {} }))
      assert.are.equal("[[],{}]", encode({ arr({}), {} }))
    end)

    it("ignores other metatables (raw access only)", function()
      local t = setmetatable({ a = 1 }, {
        __index = function() return "no" end,
        __pairs = function() error("__pairs must not be called") end,
        __len = function() return 99 end,
      })
      assert.are.equal('{"a":1}', encode(t))
      local l = setmetatable({ 1, 2 }, { __len = function() return 10 end, __index = { 3, 4, 5 } })
      assert.are.equal("[1,2]", encode(l))
    end)

    it("large strings (1 MB)", function()
      local s = string.rep("abcdefghij\226\128\148", math.floor(1024 * 1024 / 13))
      local text = encode(s)
      assert.are.equal(#s + 2, #text)
      assert.are.equal(s, decode(text))
      local esc = string.rep('"\n\\', 350000)
      local t2 = encode({ esc })
      assert.are.equal(esc, decode(t2)[1])
      local many = {}
      for i = 1, 100000 do many[i] = "item" .. i end
      local back = decode(encode(many))
      assert_same(arr(many), back)
    end)

    it("nesting: 1000 levels encode, 1001 raise", function()
      local v = {}
      local cur = v
      for _ = 2, 1000 do
        local n = {}
        cur[1] = n
        cur = n
      end
      local text = encode(v)
      assert.are.equal(string.rep("[", 999) .. "{}" .. string.rep("]", 999), text)
      cur[1] = {}
      encode_fails(v, "nested too deeply")
      -- what the decoder accepts, the encoder writes back
      local deep = string.rep("[", 1000) .. string.rep("]", 1000)
      assert.are.equal(deep, encode(decode(deep)))
    end)

    describe("errors", function()
      it("NaN and infinities", function()
        encode_fails(0 / 0, "cannot encode NaN or infinity")
        encode_fails(math.huge, "cannot encode NaN or infinity")
        encode_fails(-math.huge, "cannot encode NaN or infinity")
        encode_fails({ x = { 1, math.huge } }, "cannot encode NaN or infinity at x[2]")
      end)

      it("invalid UTF-8", function()
        encode_fails("\255", "invalid UTF-8 in string")
        encode_fails("caf\233", "invalid UTF-8 in string")
        encode_fails("\195", "invalid UTF-8 in string")
        encode_fails("\226\130", "invalid UTF-8 in string")
        encode_fails("\248\136\128\128\128", "invalid UTF-8 in string")
        encode_fails({ a = { "ok", "\128" } }, "invalid UTF-8 in string at a[2]")
        encode_fails({ ["k\255"] = 1 }, "invalid UTF-8 in object key")
      end)

      it("strict UTF-8: every sequence the decoder rejects, in values and keys", function()
        local all = {}
        for _, c in ipairs(NOT_STRICT) do all[#all + 1] = c end
        for _, c in ipairs(NOT_UTF8) do all[#all + 1] = c end
        for _, c in ipairs(all) do
          local ok, err = pcall(encode, c[2])
          assert.is_false(ok, c[1])
          assert.are.equal("invalid UTF-8 in string", err, c[1])
          ok, err = pcall(encode, { messages = arr({ { content = "ok " .. c[2] .. " ok" } }) })
          assert.is_false(ok, c[1])
          assert.are.equal("invalid UTF-8 in string at messages[1].content", err, c[1])
          ok, err = pcall(encode, { a = { [c[2]] = 1 } })
          assert.is_false(ok, c[1])
          assert.are.equal("invalid UTF-8 in object key at a", err, c[1])
          ok, err = pcall(encode, { [c[2]] = 1 })
          assert.is_false(ok, c[1])
          assert.are.equal("invalid UTF-8 in object key", err, c[1])
        end
      end)

      it("sparse arrays", function()
        encode_fails({ 1, nil, 3 }, "sparse array")
        encode_fails({ [2] = 1 }, "sparse array")
        encode_fails({ [0] = 1, 2 }, "sparse array")
        encode_fails({ [-1] = 1 }, "sparse array")
        encode_fails(arr({ [1] = 1, [3] = 3 }), "sparse array")
      end)

      it("mixed keys", function()
        encode_fails({ 1, 2, a = 3 }, "table mixes array and object keys")
        encode_fails({ list = { 1, x = 2 } }, "table mixes array and object keys at list")
        encode_fails(arr({ 1, a = 2 }), "array")
      end)

      it("non-string keys", function()
        encode_fails({ [true] = 1 }, "object keys must be strings")
        encode_fails({ [1.5] = 1 }, "object keys must be strings")
        encode_fails({ [{}] = 1 }, "object keys must be strings")
        encode_fails({ [print] = 1 }, "object keys must be strings")
      end)

      it("cycles", function()
        local t = {}
        t.self = t
        encode_fails(t, "cannot encode a table that contains itself")
        local a = { b = { c = {} } }
        a.b.c.back = a.b
        encode_fails(a, "cannot encode a table that contains itself at b.c.back")
        local l = arr({})
        l[1] = l
        encode_fails(l, "contains itself")
        -- the same table twice, not nested, is fine
        local shared = { 1 }
        assert.are.equal('{"x":[1],"y":[1]}', encode({ x = shared, y = shared }))
      end)

      it("functions, userdata, threads, with the path", function()
        encode_fails(print, "cannot encode function")
        encode_fails(coroutine.create(function() end), "cannot encode thread")
        encode_fails(io.stdout, "cannot encode userdata")
        encode_fails({ messages = { { role = "user", content = print } } },
          "cannot encode function at messages[1].content")
        encode_fails({ ["a b"] = { io.stdout } }, 'cannot encode userdata at ["a b"][1]')
      end)

      it("leaves nothing behind (repeated failures keep memory flat)", function()
        local big = string.rep("x", 100000)
        local v = { big, big, big, big, print }
        collectgarbage()
        collectgarbage()
        local before = collectgarbage("count")
        for _ = 1, 200 do pcall(encode, v) end
        collectgarbage()
        collectgarbage()
        assert.is_true(collectgarbage("count") - before < 1024, "memory grew")
      end)
    end)
  end)

  describe("round trips", function()
    it("decode(encode(v)) == v for a mixed value", function()
      local v = {
        id = "chatcmpl-1",
        n = openai.int64("-9223372036854775808"), -- an integer, or a boxed int64
        big = openai.int64("4944116822809979520"),
        f = 0.1,
        whole = 3.0,
        z = -0.0,
        null_value = null,
        list = arr({ 1, 2.0, "three", null, false, arr({}), {}, { k = arr({ 1 }) } }),
        empty_list = arr({}),
        empty_obj = {},
        text = "line\nbreak \"quoted\" \226\128\148 \0 end",
        nested = { a = { b = { c = { d = arr({ true }) } } } },
      }
      assert_same(v, decode(encode(v)))
    end)

    -- Up to 18 digits, so beyond 2^53 at times: an integer on 5.3+, a
    -- number or a boxed int64 elsewhere.
    local function random_integer()
      local digits = { math.random(2) == 1 and "-" or "", ("%d"):format(math.random(1, 9)) }
      for i = 3, math.random(2, 19) do digits[i] = ("%d"):format(math.random(0, 9)) end
      return openai.int64(table.concat(digits))
    end

    it("random documents", function()
      math.randomseed(7)
      local function leaf(r)
        if r == 1 then return random_integer() end
        if r == 2 then return (math.random() - 0.5) * 10 ^ math.random(-300, 300) end
        local t = {}
        for i = 1, math.random(0, 20) do t[i] = string.char(math.random(0, 127)) end
        return table.concat(t)
      end
      for _ = 1, 300 do
        local v = util.random_document(leaf)
        local text = encode(v)
        local back = decode(text)
        assert_same(v, back)
        assert.are.equal(text, encode(back))
      end
    end)
  end)

  describe("locale independence", function()
    -- glibc reads LOCPATH when the process starts, so the comma-decimal
    -- locale is compiled into build/ and used by a child process.
    it("numbers use '.' whatever LC_NUMERIC says", function()
      assert(os.execute("mkdir -p build/locale && localedef -i de_DE -f UTF-8 build/locale/de_DE.UTF-8 2>/dev/null"
        .. " || test -d build/locale/de_DE.UTF-8"))
      local output, code = util.run_lua([[
        local core = require("openai.core")
        assert(os.setlocale("de_DE.UTF-8", "numeric"), "locale not found")
        print(tostring(1.5), core.json_decode("1.5"), core.json_decode("[2.5e-1]")[1] == 0.25,
              core.json_encode(1.5), core.json_encode(setmetatable({ 0.1, 2.0, 1e300 }, core.array_mt)))
      ]], { LOCPATH = "build/locale" })
      assert.are.equal(0, code, output)
      -- tostring follows LC_NUMERIC except on LuaJIT, which formats numbers itself;
      -- 2.0 is the number 2 where numbers have no float subtype
      local shown = util.is_luajit and "1.5" or "1,5"
      assert.are.equal(shown .. "\t" .. shown .. "\ttrue\t1.5\t" .. (util.has_integers and "[0.1,2.0,1e+300]" or "[0.1,2,1e+300]") .. "\n",
        output)
    end)
  end)
end)
