-- LuaJIT's own 64-bit integers: JSON integers beyond 2^53 decode to
-- int64_t cdata (uint64_t above 2^63 - 1), and those cdata encode as their
-- exact digits; other cdata cannot be encoded. The LuaJIT run only
-- (tools/run-tests.sh): the LL literals are LuaJIT syntax.
local ffi = require("ffi")
local openai = require("openai")
local util = require("spec.helpers.util")

local decode, encode = openai.json.decode, openai.json.encode

-- The message of an error, without "file:line: ".
local function raised(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
end

describe("int64 cdata on LuaJIT", function()
  it("the golden seed is an int64_t equal to its literal", function()
    local cc = assert(decode(util.read_file("spec/fixtures/chatcmpl-abc123.json")))
    assert.are.equal("cdata", type(cc.seed))
    assert.is_true(ffi.istype("int64_t", cc.seed))
    assert.is_true(cc.seed == 4944116822809979520LL)
    assert.is_true(openai.int64("4944116822809979520") == 4944116822809979520LL)
    assert.are.equal("4944116822809979520LL", tostring(cc.seed))
    assert.are.equal("4944116822809979520", string.format("%d", cc.seed))
    assert.are.equal("number", type(cc.created))
  end)

  it("the ends of the int64 range, and uint64_t above it", function()
    local min, max = decode("-9223372036854775808"), decode("9223372036854775807")
    assert.is_true(ffi.istype("int64_t", min) and ffi.istype("int64_t", max))
    assert.is_true(min == -9223372036854775807LL - 1)
    assert.is_true(max == 9223372036854775807LL)
    local above, top = decode("9223372036854775808"), decode("18446744073709551615")
    assert.is_true(ffi.istype("uint64_t", above) and ffi.istype("uint64_t", top))
    assert.is_true(above == 9223372036854775808ULL)
    assert.is_true(top == 18446744073709551615ULL)
    assert.are.equal("18446744073709551615ULL", tostring(top))
    assert.are.equal("-9007199254740993LL", tostring(decode("-9007199254740993")))
  end)

  it("arithmetic and comparison are LuaJIT's", function()
    local seed = decode("4944116822809979520")
    assert.is_true(seed + 1 == 4944116822809979521LL)
    assert.is_true(seed > 0)
    assert.is_true(decode("9007199254740993") - decode("9007199254740992") == 1)
  end)

  it("int64_t and uint64_t cdata encode as their digits", function()
    assert.are.equal("123", encode(123LL))
    assert.are.equal("-5", encode(-5LL))
    assert.are.equal("0", encode(0ULL))
    assert.are.equal("-9223372036854775808", encode(-9223372036854775807LL - 1))
    assert.are.equal("18446744073709551615", encode(18446744073709551615ULL))
    assert.are.equal('{"seed":4944116822809979520}', encode({ seed = 4944116822809979520LL }))
    assert.are.equal("[1,2]", encode(openai.array { ffi.new("int64_t", 1), ffi.new("uint64_t", 2) }))
  end)

  it("other cdata cannot be encoded", function()
    assert.are.equal("cannot encode cdata", raised(encode, ffi.new("double", 1.5)))
    assert.are.equal("cannot encode cdata", raised(encode, ffi.new("int32_t", 5)))
    assert.are.equal("cannot encode cdata", raised(encode, ffi.new("int[2]")))
    assert.are.equal("cannot encode cdata at x", raised(encode, { x = ffi.cast("void *", 0) }))
  end)

  it("a query parameter may be an int64 cdata", function()
    local url = require("openai.url")
    assert.are.equal("after=4944116822809979520&n=-5", url.query_string { after = 4944116822809979520LL, n = -5LL })
  end)
end)
