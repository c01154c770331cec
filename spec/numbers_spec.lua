-- Numbers on every runtime: openai.int64, and what the JSON codec makes of
-- integers where numbers have no integer subtype (Lua 5.1, 5.2, LuaJIT):
-- plain numbers within 2^53, exact boxes beyond (an openai.int64 userdata,
-- an int64_t/uint64_t cdata on LuaJIT: spec/luajit/int64_spec.lua), and
-- 1.0 the number 1. How 5.3 and 5.4 type numbers:
-- spec/lua53/json_numbers_spec.lua.
local openai = require("openai")
local util = require("spec.helpers.util")

local decode, encode = openai.json.decode, openai.json.encode
local SEED = "4944116822809979520"

-- The message of an error raised at the caller, without "file:line: ".
local function raised(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
end

local function assert_same(expected, actual, where)
  local same, why = util.same(expected, actual, where)
  assert.is_true(same, why)
end

-- Integers in the int64 range, around 2^53 and at the ends.
local INT64_TEXTS = {
  "0", "1", "-1", "42", "9007199254740991", "9007199254740992", "-9007199254740992", "9007199254740993",
  "-9007199254740993", SEED, "-" .. SEED, "9223372036854775807", "-9223372036854775808",
}

describe("openai.int64", function()
  it("equals the seed of the golden fixture, on every runtime", function()
    local cc = assert(decode(util.read_file("spec/fixtures/chatcmpl-abc123.json")))
    assert.is_true(openai.int64(SEED) == cc.seed)
    assert.is_false(openai.int64("4944116822809979521") == cc.seed)
    assert.are.equal(SEED, util.integer_text(cc.seed))
    assert.are.equal('{"seed":' .. SEED .. "}", encode({ seed = cc.seed }))
    assert.are.equal('{"seed":' .. SEED .. "}", encode({ seed = openai.int64(SEED) }))
  end)

  it("gives what the decoder gives for the same digits", function()
    local texts = { "-0", "9223372036854775808", "18446744073709551615" }
    for _, text in ipairs(INT64_TEXTS) do texts[#texts + 1] = text end
    for _, text in ipairs(texts) do
      assert_same(decode(text), openai.int64(text), text)
    end
  end)

  it("keeps every digit of the int64 range", function()
    for _, text in ipairs(INT64_TEXTS) do
      assert.are.equal(text, util.integer_text(openai.int64(text)), text)
      assert.are.equal(text, encode(openai.int64(text)), text)
    end
  end)

  it("takes an integral number, and a value it gave", function()
    assert_same(decode("42"), openai.int64(42))
    assert_same(decode("-7"), openai.int64(-7.0))
    assert_same(decode("9007199254740992"), openai.int64(2 ^ 53))
    assert_same(decode("-9223372036854775808"), openai.int64(-2 ^ 63))
    for _, text in ipairs(INT64_TEXTS) do
      assert_same(openai.int64(text), openai.int64(openai.int64(text)), text)
    end
  end)

  it("goes into a query string as its digits", function()
    local url = require("openai.url")
    assert.are.equal("after=" .. SEED .. "&n=-9007199254740993&small=42",
      url.query_string { after = openai.int64(SEED), n = openai.int64("-9007199254740993"), small = openai.int64("42") })
  end)

  it("raises for what is not an integer of the range", function()
    local cases = {
      { "", 'not an integer: ""' },
      { "01", 'not an integer: "01"' },
      { "-", 'not an integer: "-"' },
      { "1.5", 'not an integer: "1.5"' },
      { "1e3", 'not an integer: "1e3"' },
      { " 1", 'not an integer: " 1"' },
      { "1\n", 'not an integer: "1\\n"' },
      { "+1", 'not an integer: "+1"' },
      { "--1", 'not an integer: "--1"' },
      { "0x10", 'not an integer: "0x10"' },
      { "18446744073709551616", "18446744073709551616 is beyond -2^63 .. 2^64-1" },
      { "-9223372036854775809", "-9223372036854775809 is beyond -2^63 .. 2^64-1" },
      { "100000000000000000000", "100000000000000000000 is beyond -2^63 .. 2^64-1" },
      { 1.5, "number has no integer representation" },
      { 2 ^ 63, "number has no integer representation" },
      { math.huge, "number has no integer representation" },
      { 0 / 0, "number has no integer representation" },
      { {}, "string expected, got table" },
      { true, "string expected, got boolean" },
      { io.stdout, "string expected, got userdata" },
    }
    for _, case in ipairs(cases) do
      assert.are.equal("bad argument #1 to 'int64' (" .. case[2] .. ")", raised(openai.int64, case[1]))
    end
    assert.are.equal("bad argument #1 to 'int64' (string expected, got nil)", raised(openai.int64))
  end)
end)

if not util.has_integers then
  -- What tostring shows of a box: the digits; LuaJIT adds its literal suffix.
  local function shown(text, unsigned)
    if util.is_luajit then return text .. (unsigned and "ULL" or "LL") end
    return text
  end

  describe("JSON integers without an integer subtype", function()
    it("are plain numbers up to 2^53 either way", function()
      for _, text in ipairs { "0", "1", "-1", "9007199254740991", "9007199254740992", "-9007199254740992" } do
        local v = decode(text)
        assert.are.equal("number", type(v), text)
        assert.are.equal(tonumber(text), v, text)
        assert.are.equal(text, encode(v), text)
      end
    end)

    it("are exact boxes beyond 2^53, up to -2^63 and 2^64 - 1", function()
      for _, case in ipairs {
        { "9007199254740993" }, { "-9007199254740993" }, { SEED }, { "9223372036854775807" },
        { "-9223372036854775808" }, { "9223372036854775808", true }, { "18446744073709551615", true },
      } do
        local v = decode(case[1])
        assert.is_true(util.is_int64(v), case[1])
        assert.are.equal(shown(case[1], case[2]), tostring(v))
        assert.are.equal(case[1], encode(v))
        assert.are.equal("[" .. case[1] .. "]", encode(decode("[" .. case[1] .. "]")))
      end
    end)

    it("are floats beyond the 64-bit range, as on 5.3 and 5.4", function()
      assert.are.equal("number", type(decode("18446744073709551616")))
      assert.are.equal(2 ^ 64, decode("18446744073709551616"))
      assert.are.equal(-2 ^ 63, decode("-9223372036854775809"))
      assert.are.equal("number", type(decode("-9223372036854775809")))
    end)

    it("compare as the integers they are", function()
      local a, b = decode("9007199254740993"), decode("9007199254740994")
      assert.is_true(a == decode("9007199254740993"))
      assert.is_false(a == b)
      assert.is_true(a < b)
      assert.is_true(a <= b)
      assert.is_true(a <= decode("9007199254740993"))
      assert.is_false(b < a)
      assert.is_false(b <= a)
      local low, high = decode("-9223372036854775808"), decode("-9007199254740993")
      assert.is_true(low < high)
      assert.is_true(high < a)
      assert.is_false(a < high)
    end)

    it("round-trip whole documents digit for digit", function()
      local text = '{"big":[9007199254740993,-9223372036854775808,9223372036854775807,18446744073709551615],'
        .. '"seed":' .. SEED .. ',"small":9007199254740992}'
      assert.are.equal(text, encode(decode(text)))
    end)

    it("1.0 is the number 1, written as 1; -0.0 keeps its sign", function()
      assert.are.equal(1, decode("1.0"))
      assert.are.equal("1", encode(decode("1.0")))
      assert.are.equal("[1,2.5,100,-0.0,0]", encode(decode("[1.0,2.5,1e2,-0.0,0.0]")))
      assert.are.equal("1", encode(1.0))
      assert.are.equal("-0.0", encode(-0.0))
      assert.are.equal(-math.huge, 1 / decode("-0.0"))
    end)

    it("writes a whole number beyond 2^53 as the float it is", function()
      assert.are.equal("9007199254740994.0", encode(2 ^ 53 + 2))
      assert.are.equal("1e+300", encode(1e300))
      assert.are.equal(2 ^ 53 + 2, decode(encode(2 ^ 53 + 2)))
    end)
  end)

  if not util.is_luajit then
    describe("openai.int64 boxes", function()
      it("are userdata with the metatable openai.int64", function()
        local v = decode(SEED)
        assert.are.equal("userdata", type(v))
        assert.are.equal("openai.int64", getmetatable(v).__name)
        assert.are.equal(getmetatable(v), getmetatable(decode("-9007199254740993")))
      end)

      it("compare with unsigned ones above 2^63 - 1", function()
        local max, above = decode("9223372036854775807"), decode("9223372036854775808")
        assert.is_true(max < above)
        assert.is_true(decode("-1" .. SEED:sub(2)) < above)
        assert.is_false(above <= max)
        assert.is_true(above < decode("18446744073709551615"))
      end)

      it("concatenate as their digits", function()
        assert.are.equal("seed " .. SEED, "seed " .. decode(SEED))
        assert.are.equal(SEED .. "!", decode(SEED) .. "!")
      end)

      if util.runtime == "lua5.2" then
        it("compare with numbers on Lua 5.2", function()
          local v = decode(SEED)
          assert.is_true(v > 0)
          assert.is_true(0 < v)
          assert.is_true(v >= 2 ^ 53)
          assert.is_false(v < 2 ^ 53)
          assert.is_true(decode("-" .. SEED) < -2 ^ 53)
        end)
      else
        it("compare only with boxes on Lua 5.1 (its __lt takes two of a kind)", function()
          local ok, err = pcall(function() return decode(SEED) < 0 end)
          assert.is_false(ok)
          assert.matches("attempt to compare userdata with number", err)
        end)
      end
    end)
  end
end
