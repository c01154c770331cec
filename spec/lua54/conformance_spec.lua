-- The requests the client sends, checked against OpenAI's OpenAPI
-- description of the API: each call of the table below goes to the mock,
-- which records the request as it arrived (method, path, query string,
-- Content-Type, body); tools/openapi-check.py then finds each one's
-- operation and checks its query parameters and JSON body against the
-- operation's schemas. So a wrong path, an undeclared or mistyped query
-- parameter, or a body the API's schema refuses fails here, whatever the
-- mock (which is lenient) answered.
--
-- The description is not part of this repository: OPENAI_OPENAPI_SPEC
-- names its file; unset, `tools/openapi-check.py --locate` looks near the
-- repository (the directory above it, up to three levels, for
-- openapi.yaml, openapi/openapi.yaml or */openapi/openapi.yaml titled
-- "OpenAI API"). None found: the specs are pending, with how to give one.
--
-- In spec/lua54/: the requests do not depend on the runtime (the request
-- specs cover how each runtime encodes them), so once per `make test-all`.
local cjson = require("cjson")
local mock = require("spec.helpers.mock")
local process = require("spec.helpers.process")
local openai = require("openai")

local KEY = "sk-test-conformance-0123456789"
local PYTHON = "/usr/bin/python3" -- Debian's, with python3-yaml and python3-jsonschema (make deps)
local CHECK = "tools/openapi-check.py"
local WORK = "build/conformance"  -- the recorded requests, the checker's output and its JSON copy of the spec

local q = process.shell_quote

-- The description's path, or nil, why there is none and, for a failure
-- rather than a pending spec, what failed: OPENAI_OPENAPI_SPEC naming no
-- file, or the checker itself (python3-yaml missing, say).
local function find_spec()
  local given = os.getenv("OPENAI_OPENAPI_SPEC")
  if given and given ~= "" then
    if process.read_file(given) == nil then
      return nil, "OPENAI_OPENAPI_SPEC names " .. given .. ", which cannot be read", "missing"
    end
    return given
  end
  local output, code = process.capture(q(PYTHON) .. " " .. CHECK .. " --locate")
  if code == 0 then return (output:gsub("%s+$", "")) end
  if code ~= 3 then return nil, "openapi-check --locate failed (" .. code .. "):\n" .. output, "broken" end
  return nil, "no OpenAPI description of the OpenAI API found near the repository: set OPENAI_OPENAPI_SPEC"
    .. " to the path of OpenAI's openapi.yaml (github.com/openai/openai-openapi) to run these specs"
end

-- Runs the checker over `requests` (a list in its input format); returns
-- its results (a list as long as `requests`) and its exit code.
local function check(spec_path, requests, name)
  assert(os.execute("mkdir -p " .. WORK))
  local input, output = WORK .. "/" .. name .. ".json", WORK .. "/" .. name .. ".out.json"
  process.write_file(input, cjson.encode(requests))
  local log, code = process.capture(("%s %s --json --cache-dir %s %s %s > %s"):format(
    q(PYTHON), CHECK, WORK, q(spec_path), input, output))
  assert(code == 0 or code == 1, "openapi-check failed (" .. code .. "):\n" .. log)
  return cjson.decode(process.read_file(output)), code
end

-- A request the mock recorded, in the checker's input format. The body
-- goes as its text: decoded and encoded again by cjson, [] would become {}.
local function recorded(m, req)
  local body = req.body
  if body == nil or body == cjson.null then body = "" end
  return {
    method = req.method, path = req.path, query = req.query,
    content_type = m:header(req, "content-type") or cjson.null, body_text = body,
  }
end

---------------------------------------------------------------------------
-- The calls: which method, with what, and the operation it must reach.
-- notes: what the checker notes of the request (not problems): arrays and
-- objects in a query go with brackets, include[]=x and metadata[k]=v, as
-- the official SDKs send them, where the description declares OpenAPI's
-- default style (form, explode: include=x, k=v); a Content-Type without
-- a body (none now).
---------------------------------------------------------------------------

local ID, ITEM = "chatcmpl-conformance", "msg_conformance"
local RESP, CONV = "resp_conformance", "conv_conformance"

local INCLUDE_NOTE = "query parameter 'include' sent as include[]=... (the official SDKs' brackets);"
  .. " OpenAPI style form, explode true would repeat include=..."
local METADATA_NOTE = "query parameter 'metadata' sent as metadata[key]=... (deepObject, as the official SDKs);"
  .. " it is declared with style form, explode true"

local MESSAGES = {
  { role = "developer", content = "Answer in JSON." },
  { role = "user", content = { { type = "text", text = "What is the weather in Paris?" } } },
}

local WEATHER_PARAMETERS = {
  type = "object",
  properties = { city = { type = "string" }, unit = { type = "string", enum = { "c", "f" } } },
  required = { "city", "unit" },
  additionalProperties = false,
}

local CHAT_CALLS = {
  { "chat.completions.create", operation = "createChatCompletion",
    { model = "gpt-4o-mini", messages = { { role = "user", content = "hi" } } } },
  { "chat.completions.create", operation = "createChatCompletion", {
    model = "gpt-4o-mini",
    messages = MESSAGES,
    tools = { { type = "function", ["function"] = {
      name = "get_weather", description = "The weather in a city", parameters = WEATHER_PARAMETERS, strict = true,
    } } },
    tool_choice = "auto",
    parallel_tool_calls = false,
    response_format = { type = "json_schema", json_schema = {
      name = "answer", strict = true,
      schema = { type = "object", properties = { text = { type = "string" } }, required = { "text" },
                 additionalProperties = false },
    } },
    metadata = { topic = "weather", run = "conformance" },
    logit_bias = { ["50256"] = -100, ["1234"] = 5 },
    stop = { "\n\n", "END" },
    temperature = 0.5, top_p = 0.9, n = 1, seed = 7, max_completion_tokens = 64,
    presence_penalty = 0.1, frequency_penalty = -0.1, logprobs = true, top_logprobs = 2,
    store = true, user = "user-1234", service_tier = "auto",
  } },
  { "chat.completions.create", operation = "createChatCompletion", {
    model = "gpt-4o-mini", messages = MESSAGES, stream = true, stream_options = { include_usage = true },
  } },
  { "chat.completions.retrieve", operation = "getChatCompletion", ID },
  { "chat.completions.update", operation = "updateChatCompletion", ID, { metadata = { topic = "renamed" } } },
  { "chat.completions.list", operation = "listChatCompletions", notes = { METADATA_NOTE },
    { limit = 2, order = "desc", after = "chatcmpl-before", metadata = { topic = "weather" }, model = "gpt-4o-mini" } },
  { "chat.completions.list", operation = "listChatCompletions" },
  { "chat.completions.delete", operation = "deleteChatCompletion", ID },
  { "chat.completions.messages.list", operation = "getChatCompletionMessages", ID, { limit = 2, order = "asc" } },
}

local INPUT_ITEMS = {
  { type = "message", role = "user", content = { { type = "input_text", text = "What is the weather in Paris?" } } },
}

local RESPONSE_CALLS = {
  { "responses.create", operation = "createResponse", { model = "gpt-4o-mini", input = "hi" } },
  { "responses.create", operation = "createResponse", {
    model = "gpt-4o-mini",
    instructions = "Answer briefly.",
    input = INPUT_ITEMS,
    tools = { { type = "function", name = "get_weather", description = "The weather in a city",
                parameters = WEATHER_PARAMETERS, strict = true } },
    text = { format = { type = "text" } },
    metadata = { topic = "weather" },
    store = false,
  } },
  { "responses.create", operation = "createResponse", { model = "gpt-4o-mini", input = "hi", background = true } },
  { "responses.create", operation = "createResponse", { model = "gpt-4o-mini", input = INPUT_ITEMS, stream = true } },
  { "responses.retrieve", operation = "getResponse", notes = { INCLUDE_NOTE }, RESP,
    { include = { "message.output_text.logprobs" }, stream = true, starting_after = 3 } },
  { "responses.retrieve", operation = "getResponse", RESP, { include_obfuscation = false } },
  { "responses.delete", operation = "deleteResponse", RESP },
  { "responses.cancel", operation = "cancelResponse", RESP }, -- a POST without a body: no Content-Type either
  { "responses.input_items.list", operation = "listInputItems", notes = { INCLUDE_NOTE }, RESP,
    { limit = 2, order = "asc", after = "msg_x", include = { "message.input_image.image_url" } } },
  { "responses.input_tokens.count", operation = "Getinputtokencounts", { model = "gpt-4o-mini", input = "hi" } },
  { "responses.compact", operation = "Compactconversation", { model = "gpt-4o-mini", input = INPUT_ITEMS } },
  { "conversations.create", operation = "createConversation",
    { items = { { type = "message", role = "user", content = "hello" } }, metadata = { topic = "weather" } } },
  { "conversations.create", operation = "createConversation" }, -- no params: {} is sent
  { "conversations.retrieve", operation = "getConversation", CONV },
  { "conversations.update", operation = "updateConversation", CONV, { metadata = { topic = "renamed" } } },
  { "conversations.delete", operation = "deleteConversation", CONV },
  { "conversations.items.create", operation = "createConversationItems", notes = { INCLUDE_NOTE }, CONV,
    { items = INPUT_ITEMS }, { query = { include = { "message.input_image.image_url" } } } },
  { "conversations.items.list", operation = "listConversationItems", notes = { INCLUDE_NOTE }, CONV,
    { limit = 2, order = "desc", after = "msg_x", include = { "message.output_text.logprobs" } } },
  { "conversations.items.retrieve", operation = "getConversationItem", CONV, ITEM },
  { "conversations.items.delete", operation = "deleteConversationItem", CONV, ITEM },
}

-- client:request, the raw way to an endpoint the client has no method for.
local RAW_CALLS = {
  { ":request", operation = "createEmbedding",
    { method = "POST", path = "/embeddings", body = { model = "text-embedding-3-small", input = "hi" } } },
  { ":request", operation = "listChatCompletions", { method = "GET", path = "/chat/completions", query = { limit = 1 } } },
  { ":request", operation = "createResponse",
    { method = "POST", path = "/responses", body = { model = "gpt-4o-mini", input = "hi", stream = true }, stream = true } },
}

-- The function a call's dotted name names ("chat.completions.create"), or
-- for ":request" the client's method bound to it.
local function method_of(client, name)
  if name:sub(1, 1) == ":" then
    local fn = client[name:sub(2)]
    return function(...) return fn(client, ...) end
  end
  local value = client
  for key in name:gmatch("[^.]+") do value = value[key] end
  return value
end

-- Makes every call (an error answer is as good as any: what counts is
-- what was sent), reads what the mock recorded, and checks it all.
local function run_calls(m, spec_path, calls, name)
  m:reset()
  local client = openai.new { api_key = KEY, base_url = m.base_url, max_retries = 0 }
  for _, call in ipairs(calls) do
    local ok, result = pcall(method_of(client, call[1]), table.unpack(call, 2))
    assert(ok, call[1] .. " raised: " .. tostring(result))
    -- A stream holds its connection until closed; it is not read.
    if type(result) == "table" and getmetatable(result) and getmetatable(result).__close then result:close() end
  end
  client:close()
  local requests = {}
  for i, req in ipairs(m:requests()) do requests[i] = recorded(m, req) end
  assert.are.equal(#calls, #requests) -- max_retries = 0: one request a call
  local results, code = check(spec_path, requests, name)
  local got, want = {}, {}
  for i, call in ipairs(calls) do
    local r = results[i]
    got[i] = { r.method .. " " .. r.path, r.operation_id, r.problems, r.notes }
    want[i] = { r.method .. " " .. r.path, call.operation, {}, call.notes or {} }
  end
  assert.are.same(want, got)
  assert.are.equal(0, code)
end

describe("requests against OpenAI's OpenAPI description", function()
  -- Under a sanitizer or valgrind these calls take the C core's usual paths
  -- (the other specs run them there): only time would be added.
  if process.instrumented() then
    pending("conformance specs do not run under a sanitizer or valgrind")
    return
  end
  local spec_path, why, failure = find_spec()
  if spec_path == nil and failure == nil then
    pending(why)
    return
  end

  local m
  setup(function() m = mock.start { api_key = KEY } end)
  teardown(function() if m then m:stop() end end)

  before_each(function() assert(spec_path, why) end)

  local GROUPS = {
    { "chat completions: create (plain, rich, streamed), retrieve, update, list, delete, messages", CHAT_CALLS, "chat" },
    { "responses and conversations: every method", RESPONSE_CALLS, "responses" },
    { "a raw client:request to an endpoint without a method", RAW_CALLS, "raw" },
  }
  for _, group in ipairs(GROUPS) do
    local title, calls, name = group[1], group[2], group[3]
    it(title, function() run_calls(m, spec_path, calls, name) end)
  end

  -- The checker can fail: hand-made requests with what it must find.
  it("reports an unknown query parameter, a missing required field or body, wrong types and an unknown path", function()
    local requests = {
      { method = "GET", path = "/v1/chat/completions", query = "limit=ten&order=up&colour=red",
        content_type = cjson.null, body_text = "" },
      { method = "POST", path = "/v1/chat/completions", query = "", content_type = "application/json",
        body_text = '{"messages":[{"role":"user","content":3}],"n":"2"}' },
      { method = "POST", path = "/v1/chat/completions/" .. ID, query = "", content_type = "application/json",
        body_text = '{"metadata":{"topic":1}}' },
      { method = "GET", path = "/v1/responses/" .. RESP, query = "include%5B%5D=everything",
        content_type = cjson.null, body_text = "" },
      { method = "DELETE", path = "/v1/responses/" .. RESP, query = "", content_type = "application/json",
        body_text = "{}" },
      { method = "GET", path = "/v1/chat/completion", query = "", content_type = cjson.null, body_text = "" },
      { method = "POST", path = "/v1/chat/completions/" .. ID, query = "", content_type = cjson.null, body_text = "" },
      { method = "POST", path = "/v1/responses/" .. RESP .. "/cancel", query = "",
        content_type = "application/x-www-form-urlencoded", body_text = "" },
    }
    local results, code = check(spec_path, requests, "negative")
    local got = {}
    for i, r in ipairs(results) do got[i] = { r.operation_id, r.problems, r.notes } end
    assert.are.same({
      { "listChatCompletions", {
        "query parameter limit: 'ten' is not of type 'integer'",
        "query parameter order: 'up' is not one of ['asc', 'desc']",
        "query parameter 'colour' is not declared for this operation",
      }, {} },
      { "createChatCompletion", {
        "body: 'model' is a required property",
        "body.messages[0].content: 3 is not valid under any of the given schemas",
        "body.n: '2' is not of type 'integer', 'null'", -- `nullable: true`, read as "or null"
      }, {} },
      { "updateChatCompletion", { "body.metadata.topic: 1 is not of type 'string'" }, {} },
      { "getResponse", { "query parameter include[0]: 'everything' is not one of ['file_search_call.results', "
        .. "'web_search_call.results', 'web_search_call.action.sources', 'message.input_image.image_url', "
        .. "'computer_call_output.output.image_url', 'code_interpreter_call.outputs', "
        .. "'reasoning.encrypted_content', 'message.output_text.logprobs']" }, { INCLUDE_NOTE } },
      { "deleteResponse", { "a body is sent, but the operation takes none" }, {} },
      { cjson.null, { "no operation GET /chat/completion in the spec" }, {} },
      { "updateChatCompletion", { "the operation requires a body; none is sent" }, {} },
      { "cancelResponse", {}, { "Content-Type 'application/x-www-form-urlencoded' sent with an empty body;"
        .. " the operation takes no body" } },
    }, got)
    assert.are.equal(1, code)
  end)
end)
