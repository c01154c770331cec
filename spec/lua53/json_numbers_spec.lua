-- The JSON codec's numbers where Lua has an integer subtype (5.3, 5.4):
-- which JSON numbers become integers and which floats, and the text floats
-- are written with. The 5.3 and 5.4 runs only (tools/run-tests.sh); the
-- rules every runtime shares are in spec/json_spec.lua, those of the
-- runtimes without integers in spec/numbers_spec.lua.
local core = require("openai.core")
local util = require("spec.helpers.util")

local decode, encode = core.json_decode, core.json_encode
local null, array_mt = core.null, core.array_mt

local spec_dir = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./")
local FIXTURE = spec_dir .. "../fixtures/chatcmpl-abc123.json"

local function arr(t)
  return setmetatable(t, array_mt)
end

local function assert_same(a, b)
  local ok, why = util.same(a, b, nil, true)
  assert(ok, why)
end

-- A random 64-bit integer (Lua 5.3's math.random takes no wider interval
-- than 2^63).
local function random64()
  return (math.random(0, 0xFFFFFFFF) << 32) | math.random(0, 0xFFFFFFFF)
end

describe("json numbers with integers (Lua 5.3+)", function()
  describe("golden fixture chatcmpl-abc123.json", function()
    local text = util.read_file(FIXTURE)

    it("decodes integers as integers and floats as floats", function()
      local cc = assert(decode(text))
      assert.are.equal(4944116822809979520, cc.seed)
      assert.are.equal("integer", math.type(cc.seed))
      assert.are.equal("integer", math.type(cc.created))
      assert.are.equal("float", math.type(cc.temperature))
      assert.are.equal("float", math.type(cc.top_p))
      assert.are.equal("float", math.type(cc.presence_penalty))
      assert.are.equal("integer", math.type(cc.usage.total_tokens))
    end)

    it("re-encodes 1.0 as 1.0", function()
      local json = encode(assert(decode(text)))
      assert.is_truthy(json:find('"temperature":1.0,', 1, true))
      assert.is_truthy(json:find('"top_p":1.0,', 1, true))
    end)
  end)

  describe("decoding numbers", function()
    local cases = {
      { "0", 0, "integer" },
      { "-0", 0, "integer" },
      { "42", 42, "integer" },
      { "-42", -42, "integer" },
      { "9223372036854775807", math.maxinteger, "integer" },
      { "-9223372036854775808", math.mininteger, "integer" },
      { "9223372036854775808", 9223372036854775808.0, "float" },
      { "-9223372036854775809", -9223372036854775809.0, "float" },
      { "99999999999999999999", 1e20, "float" },
      { "4944116822809979520", 4944116822809979520, "integer" },
      { "9007199254740993", 9007199254740993, "integer" },
      { "1.0", 1.0, "float" },
      { "-0.0", -0.0, "float" },
      { "1e2", 100.0, "float" },
      { "1E2", 100.0, "float" },
      { "1e+2", 100.0, "float" },
      { "25e-1", 2.5, "float" },
      { "0.1", 0.1, "float" },
      { "-1.5", -1.5, "float" },
      { "1e400", math.huge, "float" },
      { "-1e400", -math.huge, "float" },
      { "1e-400", 0.0, "float" },
      { "5e-324", 4.9406564584124654e-324, "float" },
      { "2.2250738585072014e-308", 2.2250738585072014e-308, "float" },
      { "1.7976931348623157e308", 1.7976931348623157e308, "float" },
      { "0.30000000000000004", 0.30000000000000004, "float" },
    }
    for _, c in ipairs(cases) do
      it(c[1] .. " -> " .. c[3], function()
        local v = decode(c[1])
        assert.are.equal(c[3], math.type(v))
        assert.are.equal(c[2], v)
        local w = decode("[" .. c[1] .. "]")[1]
        assert.are.equal(c[3], math.type(w))
        assert.are.equal(c[2], w)
      end)
    end

    it("keeps the sign of -0.0 and not of -0", function()
      assert.are.equal(-math.huge, 1 / decode("-0.0"))
      assert.are.equal(0, decode("-0"))
      assert.are.equal("integer", math.type(decode("-0")))
    end)

    it("a 400-digit integer becomes a float, never clamped", function()
      local v = decode(string.rep("9", 400))
      assert.are.equal("float", math.type(v))
      assert.are.equal(math.huge, v)
      local w = decode("1" .. string.rep("0", 30))
      assert.are.equal(1e30, w)
    end)
  end)

  describe("argument checks", function()
    it("max_values: the integer range, and no fraction", function()
      for _, bad in ipairs({ 0, -1, math.mininteger }) do
        local ok, err = pcall(decode, "[]", nil, bad)
        assert.is_false(ok)
        assert.is_truthy(err:find("bad argument #3", 1, true), err)
        assert.is_truthy(err:find("(max_values must be a positive integer)", 1, true), err)
      end
      local ok, err = pcall(decode, "[]", nil, 1.5)
      assert.is_false(ok)
      assert.is_truthy(err:find("bad argument #3", 1, true) and err:find("number has no integer representation", 1, true), err)
      assert.is_table(decode("[[]]", 2, math.maxinteger))
    end)
  end)

  describe("encoding", function()
    it("integers", function()
      assert.are.equal("9223372036854775807", encode(math.maxinteger))
      assert.are.equal("-9223372036854775808", encode(math.mininteger))
      assert.are.equal("4944116822809979520", encode(4944116822809979520))
    end)


    it("floats: shortest text that reads back, and stays a float", function()
      local cases = {
        { 0.1, "0.1" },
        { 1.0, "1.0" },
        { -1.0, "-1.0" },
        { 0.0, "0.0" },
        { -0.0, "-0.0" },
        { 2.5, "2.5" },
        { 100.0, "100.0" },
        { 1e300, "1e+300" },
        { 1e-7, "1e-07" },
        { 5e-324, "5e-324" },
        { 2 ^ 53, "9007199254740992.0" },
        { 2 ^ 63, "9.223372036854776e+18" },
        { 1 / 3, "0.3333333333333333" },
        { 0.30000000000000004, "0.30000000000000004" },
        { 1.7976931348623157e308, "1.7976931348623157e+308" },
        { 123456.789, "123456.789" },
      }
      for _, c in ipairs(cases) do
        local text = encode(c[1])
        assert.are.equal(c[2], text)
        local back = decode(text)
        assert.are.equal("float", math.type(back))
        assert.are.equal(c[1], back)
      end
    end)

    it("floats read back exactly (random bit patterns)", function()
      math.randomseed(42)
      for _ = 1, 2000 do
        local v = string.unpack("<d", string.pack("<i8", random64()))
        if v == v and v ~= math.huge and v ~= -math.huge then
          local back = decode(encode(v))
          assert.are.equal("float", math.type(back))
          assert.are.equal(v, back)
        end
      end
    end)

    -- The float rule written out with string.format and tonumber (both C's
    -- snprintf and strtod): the first of %.15g/%.16g/%.17g (from %.1g for a
    -- subnormal) that reads back, ".0" added when it has only digits. The
    -- encoder computes most floats without snprintf; this pins its text to
    -- the rule. fuzz/json_roundtrip.c checks the same on what it generates.
    local function float_rule(v)
      local text
      for p = (v ~= 0 and math.abs(v) < 2.2250738585072014e-308) and 1 or 15, 17 do
        text = string.format("%." .. p .. "g", v)
        local back = tonumber(text)
        if math.type(back) == "integer" then back = back + 0.0 end
        if p == 17 or back == v then break end
      end
      if not text:find("[^%d%-]") then text = text .. ".0" end
      return text
    end

    local function from_bits(i) return (string.unpack("<d", string.pack("<i8", i))) end
    local function bits(v) return (string.unpack("<i8", string.pack("<d", v))) end

    it("floats: the same text as snprintf's %.15g/%.16g/%.17g rule", function()
      local count = 0
      local function check(v)
        if v == v and v ~= math.huge and v ~= -math.huge then
          count = count + 1
          local want = float_rule(v)
          local got = encode(v)
          if got ~= want then
            error(string.format("%a: encode gives %s, the rule %s", v, got, want))
          end
        end
      end
      -- powers of ten and of two with their neighbours, both signs
      for k = -325, 309 do
        local p = tonumber("1e" .. k)
        if p ~= 0 and p ~= math.huge then
          for d = -3, 3 do
            check(from_bits(bits(p) + d))
            check(-from_bits(bits(p) + d))
          end
        end
      end
      for k = -1074, 1023 do
        local p = 2.0 ^ k
        for d = -2, 2 do check(from_bits(bits(p) + d)) end
      end
      -- around 2^53, integers as floats, 15/16/17 digit boundaries
      for d = -40, 40 do check(2.0 ^ 53 + d) check(from_bits(bits(2.0 ^ 53) + d)) check(d + 0.0) check(d / 8) end
      for k = -30, 40 do
        for _, m in ipairs({ "999999999999999", "9999999999999999", "99999999999999999", "1000000000000001",
                             "100000000000000001", "1", "5", "123456789012345", "1234567890123456",
                             "12345678901234567", "9999999999999995", "999999999999999.5" }) do
          check(tonumber(m .. "e" .. k) + 0.0)
        end
      end
      math.randomseed(20240611)
      for _ = 1, 20000 do
        -- short decimals like the API's (-0.0012345678, -1.2159517e-05)
        local digits = math.random(1, 17)
        local m = math.random(0, 10 ^ math.min(digits, 15) - 1)
        if digits > 15 then m = m * 10 ^ (digits - 15) + math.random(0, 10 ^ (digits - 15) - 1) end
        check(tonumber(string.format("%s%de%d", math.random(2) == 1 and "-" or "", m, math.random(-40, 40))) + 0.0)
        -- any bit pattern, and the doubles in the range the fast path covers
        check(from_bits(random64()))
        check(from_bits(math.random(0x3E00000000000000, 0x47F0000000000000)))
        -- subnormals
        check(from_bits(math.random(1, 0x000FFFFFFFFFFFFF)))
        -- float32 values, as embeddings often are
        check((string.unpack("<f", string.pack("<i4", math.random(-0x7F800000, 0x7F7FFFFF)))))
      end
      assert.is_true(count > 100000)
    end)
  end)

  describe("round trips", function()
    it("encode(decode(s)) keeps every value and type", function()
      local s = '{"a":[1,1.0,-0.0,1e+300,"x",null,true,{},[]],"b":{"c":9223372036854775807}}'
      assert.are.equal(s, encode(decode(s)))
    end)

    it("random documents of every integer and float", function()
      math.randomseed(7)
      local function leaf(r)
        if r == 1 then return random64() end
        if r == 2 then return (math.random() - 0.5) * 10 ^ math.random(-300, 300) end
        return math.random(-1000, 1000) + 0.0
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
end)
