-- Malformed stream chunks: every JSON type in every position the
-- accumulation for final() reads. next() must return each chunk as sent and
-- never raise; final() assembles what it can use and skips the rest.
-- The streams here read from a scripted stand-in for openai.core's Stream
-- (same read() contract), so each shape runs in its own stream; the mock
-- replays the failures seen in the field (spec/stream_spec.lua).
local openai = require("openai")
local core = require("openai.core")
local Stream = require("openai.stream")
local util = require("spec.helpers.util")

-- A stand-in for the C stream: read() hands out { event, data } pairs, then
-- the end; after close(), read() fails as the C stream does.
local function fake_raw(events)
  local raw = { reads = 0, closed = false }
  function raw.read()
    if raw.closed then return nil, "closed", "the stream was closed" end
    raw.reads = raw.reads + 1
    local event = events[raw.reads]
    if event == nil then return nil end
    return event[1], event[2]
  end
  function raw.close() raw.closed = true end
  return raw
end

local HEADERS = { ["x-request-id"] = "req_shapes", ["content-type"] = "text/event-stream" }

local function stream_of(datas)
  local events = {}
  for i, data in ipairs(datas) do events[i] = { nil, data } end
  local raw = fake_raw(events)
  return Stream.new(raw, 200, HEADERS, nil, require("openai.resources.chat").stream), raw
end

local function is_array(value) return type(value) == "table" and getmetatable(value) == openai.array_mt end
local function is_object(value) return type(value) == "table" and getmetatable(value) ~= openai.array_mt end

-- What next() returns for `text`: the decoded JSON, with a missing
-- finish_reason added as null to every choice that is an object.
local function expected_chunk(text)
  local chunk = assert(openai.json.decode(text))
  if is_object(chunk) and is_array(chunk.choices) then
    for _, choice in ipairs(chunk.choices) do
      if is_object(choice) and choice.finish_reason == nil then choice.finish_reason = openai.null end
    end
  end
  return chunk
end

-- One value of every JSON type, and the numbers an index can go wrong with.
local VALUES = {
  "null", "true", "false", "0", "1", "-1", "-0", "1.0", "1.5", "1e400", "-1e400",
  "9007199254740991", "9007199254740992", "9223372036854775807", "18446744073709551616",
  '""', '"x"', '"0"', "[]", "[null]", "[1]", "[true]", '["x"]', "[[]]", "[{}]", "{}", '{"a":1}',
}

-- A usable index: an integral number in 0 .. 2^53 - 1.
local function index_of(text)
  local value = openai.json.decode(text)
  if value == nil or value == openai.null then return "absent" end
  local n = type(value) == "number" and value == math.floor(value) and value
  if n and n >= 0 and n < 2 ^ 53 then return math.tointeger and math.tointeger(n) or n end
  return nil
end

local function decoded(text) return (openai.json.decode(text)) end

-- Whether a chunk under this index goes to choice 0 with the others.
local function same_choice(text)
  local index = index_of(text)
  return index == "absent" or index == 0
end
local function string_or(text, default)
  local value = decoded(text)
  if type(value) == "string" then return value end
  return default
end

-- Positions: a chunk with `%s` where the value goes, and what final()
-- makes of choice 0 (content between "a" and "b", role, refusal), how many
-- tool calls it has, and its top-level members.
local TOOL_CALL = '{"index":0,"id":"call_x","type":"function","function":{"name":"f","arguments":"{}"}}'
local function in_delta(fields) return '{"choices":[{"index":0,"delta":' .. fields .. "}]}" end
local function in_call(call) return in_delta('{"tool_calls":[' .. call .. "]}") end

local POSITIONS = {
  { "chunk.choices", '{"choices":%s}' },
  { "choice", '{"choices":[%s]}' },
  { "choice.index", '{"choices":[{"index":%s,"delta":{"role":"tool","content":"c"}}]}',
    content = function(v) return same_choice(v) and "acb" or "ab" end,
    role = function(v) return same_choice(v) and "tool" or "assistant" end },
  { "choice.delta", '{"choices":[{"index":0,"delta":%s}]}' },
  { "delta.role", in_delta('{"role":%s}'), role = function(v) return string_or(v, "assistant") end },
  { "delta.content", in_delta('{"content":%s}'), content = function(v) return "a" .. string_or(v, "") .. "b" end },
  { "delta.refusal", in_delta('{"refusal":%s}'), refusal = function(v) return string_or(v, openai.null) end },
  { "delta.tool_calls", in_delta('{"tool_calls":%s}'), calls = function(v) return v == "[{}]" and 1 or 0 end },
  { "tool_call", in_call("%s"), calls = function(v) return is_object(decoded(v)) and 1 or 0 end },
  { "tool_call.index", in_call(TOOL_CALL:gsub('"index":0', '"index":%%s')),
    calls = function(v) return index_of(v) and 1 or 0 end },
  { "tool_call.id", in_call(TOOL_CALL:gsub('"call_x"', "%%s")), calls = function() return 1 end },
  { "tool_call.type", in_call(TOOL_CALL:gsub('"type":"function"', '"type":%%s')), calls = function() return 1 end },
  { "tool_call.function", in_call('{"index":0,"id":"call_x","function":%s}'), calls = function() return 1 end },
  { "function.name", in_call('{"index":0,"function":{"name":%s,"arguments":"{}"}}'), calls = function() return 1 end },
  { "function.arguments", in_call('{"index":0,"function":{"name":"f","arguments":%s}}'), calls = function() return 1 end },
  { "choice.finish_reason", '{"choices":[{"index":0,"delta":{},"finish_reason":%s}]}' },
  { "choice.logprobs", '{"choices":[{"index":0,"delta":{},"logprobs":%s}]}' },
  { "logprobs.content", '{"choices":[{"index":0,"delta":{},"logprobs":{"content":%s,"refusal":null}}]}' },
  { "logprobs.refusal", '{"choices":[{"index":0,"delta":{},"logprobs":{"content":null,"refusal":%s}}]}' },
  { "logprobs.content[]", '{"choices":[{"index":0,"delta":{},"logprobs":{"content":[%s]}}]}' },
  { "logprobs.refusal[]", '{"choices":[{"index":0,"delta":{},"logprobs":{"refusal":[%s]}}]}' },
  { "chunk.usage", '{"choices":[],"usage":%s}', member = "usage",
    top = function(v) return is_object(decoded(v)) and decoded(v) or openai.null end },
  { "chunk.id", '{"id":%s,"choices":[]}', member = "id", top = decoded },
  { "chunk.model", '{"model":%s,"choices":[]}', member = "model", top = decoded },
  { "chunk.created", '{"created":%s,"choices":[]}', member = "created", top = decoded },
  { "chunk.system_fingerprint", '{"system_fingerprint":%s}', member = "system_fingerprint", top = decoded },
  { "chunk.service_tier", '{"service_tier":%s}', member = "service_tier", top = decoded },
}

-- Chunks before and after the malformed one, so final() has a choice 0.
local BEFORE = in_delta('{"role":"assistant","content":"a"}')
local AFTER = '{"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}]}'

local function check_same(expected, actual, where)
  local same, why = util.same(expected, actual, where)
  assert.is_true(same, why)
end

-- final() is well formed: an array of choices, each with a message whose
-- members have the documented types.
local function check_final(cc, where)
  assert.are.equal("chat.completion", cc.object, where)
  assert.is_true(is_array(cc.choices), where)
  for _, choice in ipairs(cc.choices) do
    assert.is_not_nil(util.integer_text(choice.index), where)
    assert.is_string(choice.message.role, where)
    assert.is_true(type(choice.message.content) == "string" or choice.message.content == openai.null, where)
    assert.is_true(type(choice.message.refusal) == "string" or choice.message.refusal == openai.null, where)
    assert.is_true(type(choice.finish_reason) == "string" or choice.finish_reason == openai.null, where)
    if choice.message.tool_calls ~= nil then
      assert.is_true(is_array(choice.message.tool_calls), where)
      for _, call in ipairs(choice.message.tool_calls) do
        assert.is_string(call.type, where)
        assert.is_string(call["function"].name, where)
        assert.is_string(call["function"].arguments, where)
      end
    end
    local logprobs = choice.logprobs
    assert.is_true(logprobs == openai.null or is_object(logprobs), where)
    if logprobs ~= openai.null then
      for _, part in ipairs { "content", "refusal" } do
        assert.is_true(logprobs[part] == openai.null or is_array(logprobs[part]), where)
        if is_array(logprobs[part]) then
          for _, item in ipairs(logprobs[part]) do assert.is_true(is_object(item), where) end
        end
      end
    end
  end
  assert.is_true(cc.usage == openai.null or is_object(cc.usage), where)
end

describe("malformed stream chunks", function()
  for _, position in ipairs(POSITIONS) do
    local name, template = position[1], position[2]
    it("every JSON type at " .. name .. ": next() returns each chunk, final() what it could use", function()
      for _, value in ipairs(VALUES) do
        local where = name .. " = " .. value
        local text = template:gsub("%%s", value)
        local stream, raw = stream_of { BEFORE, text, AFTER, "[DONE]" }
        for _, sent in ipairs { BEFORE, text, AFTER } do
          local ok, chunk, err = pcall(stream.next, stream)
          assert.is_true(ok, where .. ": next() raised " .. tostring(chunk))
          assert.is_nil(err, where .. ": " .. tostring(err))
          check_same(expected_chunk(sent), chunk, where)
        end
        assert.are.same({}, { stream:next() }, where)
        assert.is_true(raw.closed, where)

        local cc, err = stream:final()
        assert.is_nil(err, where .. ": " .. tostring(err))
        check_final(cc, where)
        local first = cc.choices[1]
        assert.are.equal(0, first.index, where)
        assert.are.equal(position.content and position.content(value) or "ab", first.message.content, where)
        assert.are.equal(position.role and position.role(value) or "assistant", first.message.role, where)
        assert.are.equal(position.refusal and position.refusal(value) or openai.null, first.message.refusal, where)
        assert.are.equal("stop", first.finish_reason, where)
        local calls = position.calls and position.calls(value) or 0
        assert.are.equal(calls, first.message.tool_calls and #first.message.tool_calls or 0, where)
        if position.member then check_same(position.top(value), cc[position.member], where) end
        assert.are.equal("req_shapes", cc._request_id, where)
      end
    end)
  end

  it("a choice is kept apart under a usable index and skipped under any other", function()
    for _, value in ipairs(VALUES) do
      local where = "index = " .. value
      local stream = stream_of { BEFORE, ('{"choices":[{"index":%s,"delta":{"role":"tool","content":"c"}}]}'):format(value), AFTER }
      local cc = assert(stream:final())
      local index = index_of(value)
      if index == nil then
        assert.are.equal(1, #cc.choices, where)
        assert.are.equal("ab", cc.choices[1].message.content, where)
      elseif index == "absent" or index == 0 then -- the same choice as the others
        assert.are.equal(1, #cc.choices, where)
        assert.are.equal("acb", cc.choices[1].message.content, where)
        assert.are.equal("tool", cc.choices[1].message.role, where)
      else
        assert.are.equal(2, #cc.choices, where)
        check_same({ index = index, finish_reason = openai.null, logprobs = openai.null,
                     message = { role = "tool", content = "c", refusal = openai.null } }, cc.choices[2], where)
      end
    end
  end)

  it("tool calls are put together by index, in index order; a call without an index is a new one", function()
    local function call(fields) return in_call(fields) end
    local stream = stream_of {
      call('{"index":3,"id":"call_d","type":"function","function":{"name":"late","arguments":"{"}}'),
      call('{"index":1,"id":"call_b","type":"function","function":{"name":"get_","arguments":"{\\"a\\""}}'),
      call('{"index":1,"function":{"name":"weather","arguments":":1}"}}'),
      call('{"index":-1,"id":"call_neg","function":{"name":"neg","arguments":"x"}}'),
      call('{"index":1.5,"id":"call_frac","function":{"name":"frac","arguments":"x"}}'),
      call('{"index":"2","id":"call_str","function":{"name":"str","arguments":"x"}}'),
      call('{"index":3,"function":{"arguments":"}"}}'),
      call('{"id":"call_e","type":"function","function":{"name":"noindex","arguments":"[]"}}'),
      call('{"index":null,"id":"call_f","function":{"name":"nullindex"}}'),
    }
    local cc = assert(stream:final())
    check_same(openai.array {
      { id = "call_b", type = "function", ["function"] = { name = "get_weather", arguments = '{"a":1}' } },
      { id = "call_d", type = "function", ["function"] = { name = "late", arguments = "{}" } },
      { id = "call_e", type = "function", ["function"] = { name = "noindex", arguments = "[]" } },
      { id = "call_f", type = "function", ["function"] = { name = "nullindex", arguments = "" } },
    }, cc.choices[1].message.tool_calls, "tool_calls")
  end)

  it("keeps the usage object and the logprob objects, and skips what is not one", function()
    local stream = stream_of {
      '{"choices":[{"index":0,"delta":{"content":"a"},"logprobs":{"content":[{"token":"a","logprob":-0.5},7,null,"t",[1]],"refusal":null}}]}',
      '{"choices":[{"index":0,"delta":{"content":"b"},"logprobs":{"content":[{"token":"b","logprob":-1}],"refusal":{"token":"x"}}}]}',
      '{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}',
      '{"choices":[],"usage":5}',
      '{"choices":[],"usage":[1]}',
    }
    local cc = assert(stream:final())
    check_same({ content = openai.array { { token = "a", logprob = -0.5 }, { token = "b", logprob = -1 } },
                 refusal = openai.null }, cc.choices[1].logprobs, "logprobs")
    check_same({ prompt_tokens = 1, completion_tokens = 2, total_tokens = 3 }, cc.usage, "usage")
  end)

  it("a chunk that is not an object is returned and adds nothing", function()
    local stream = stream_of { BEFORE, "[1,2]", "[]", AFTER }
    local chunks = {}
    for chunk in stream do chunks[#chunks + 1] = chunk end
    check_same({ expected_chunk(BEFORE), openai.array { 1, 2 }, openai.array(), expected_chunk(AFTER) }, chunks, "chunks")
    local cc = assert(stream:final())
    assert.are.equal("ab", cc.choices[1].message.content)
  end)

  describe("an unexpected Lua error while using a chunk", function()
    -- Stands for a bug in the accumulation: reading a member a chunk does
    -- not have raises. (A metatable on the chunk, which every runtime
    -- honours; ipairs honours __index only from Lua 5.3 on.)
    local function with_raising_chunks(f)
      local decode = core.json_decode
      core.json_decode = function(...)
        local value, err = decode(...)
        if type(value) == "table" then
          setmetatable(value, { __index = function() error("chunks raise here", 0) end })
        end
        return value, err
      end
      local ok, err = pcall(f)
      core.json_decode = decode
      if not ok then error(err, 0) end
    end

    it("becomes nil, APIResponseValidationError and a finished, closed stream", function()
      local stream, raw = stream_of { BEFORE, AFTER }
      local results = {}
      with_raising_chunks(function() results = util.pack(stream:next()) end)
      assert.are.equal(2, results.n)
      assert.is_nil(results[1])
      local err = results[2]
      assert.are.equal(openai.Error, getmetatable(err))
      assert.are.equal("APIResponseValidationError", err.name)
      assert.are.equal("200 cannot use a stream chunk: chunks raise here", err.message)
      assert.are.equal(200, err.status)
      assert.are.equal("req_shapes", err.request_id)
      assert.are.equal(BEFORE, err.body)
      assert.is_true(raw.closed)
      assert.are.equal("openai.ChatCompletionStream (finished)", tostring(stream))
      assert.are.same({ nil, err }, { stream:next() })
      assert.are.same({ nil, err }, { stream:final() })
      assert.are.equal(1, raw.reads)
    end)

    it("is raised as that error object by a for loop, never as a string", function()
      local stream = stream_of { BEFORE, AFTER }
      local ok, err
      with_raising_chunks(function()
        ok, err = pcall(function() for _ in stream do end end)
      end)
      assert.is_false(ok)
      assert.are.equal(openai.Error, getmetatable(err))
      assert.are.equal("APIResponseValidationError", err.name)
    end)
  end)
end)
