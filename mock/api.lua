-- The /v1 API: authentication, routing and the chat-completions resource.
--
-- Replies are deterministic (the assistant echoes the last message) so specs
-- can assert exact values.  Numbers from request bodies are echoed as their
-- raw text (see mock.json), never through floats.

local json = require("mock.json")
local http = require("mock.http")
local Store = require("mock.store")

local M = {}
M.__index = M

local CREATED_BASE = 1738960610
local null = json.null

---------------------------------------------------------------------------
-- Error bodies (shapes of the real API)
---------------------------------------------------------------------------

local function error_body(message, param, code, etype)
  return json.encode(json.obj("error", json.obj(
    "message", message,
    "type", etype or "invalid_request_error",
    "param", param or null,
    "code", code or null)))
end

local NO_KEY_MESSAGE = "You didn't provide an API key. You need to provide your API key in an Authorization header " ..
  "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if " ..
  "you're accessing the API from your browser and are prompted for a username. You can obtain an API key from " ..
  "https://platform.openai.com/account/api-keys."

local BAD_JSON_MESSAGE = "We could not parse the JSON body of your request. (HINT: This likely means you aren't " ..
  "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. " ..
  "If you have trouble figuring out how to fix this, please visit https://platform.openai.com/docs/libraries.)"

-- Like the real API: only the first 3 and last 4 characters survive.
function M.mask_key(key)
  if #key < 8 then return string.rep("*", #key) end
  return key:sub(1, 3) .. string.rep("*", #key - 7) .. key:sub(-4)
end

local function type_phrase(v)
  if v == null then return "null" end
  if json.is_array(v) then return "an array" end
  if json.is_object(v) then return "an object" end
  if json.is_number(v) then return "a number" end
  if type(v) == "boolean" then return "a boolean" end
  return "a string"
end

local function invalid_type(param, expected, v)
  return error_body(string.format("Invalid type for '%s': expected %s, but got %s instead.",
    param, expected, type_phrase(v)), param, "invalid_type")
end

---------------------------------------------------------------------------
-- Small helpers
---------------------------------------------------------------------------

function M.pct_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Query string -> map of decoded keys to decoded values (last one wins), plus
-- the metadata[...] filters in order.  '+' stays a literal plus.
function M.parse_query(q)
  local map, metadata = {}, {}
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k, v = M.pct_decode(k), M.pct_decode(v)
    map[k] = v
    local mk = k:match("^metadata%[(.*)%]$")
    if mk then metadata[#metadata + 1] = { mk, v } end
  end
  return map, metadata
end

local message_text = Store.message_text

local function count_words(s)
  local n = 0
  for _ in s:gmatch("%S+") do n = n + 1 end
  return n
end

-- Validated paging parameters, or nil, error body.
local function page_params(q)
  local p = { limit = 20, order = "asc" }
  if q.limit ~= nil then
    if not q.limit:match("^%-?%d+$") then
      return nil, error_body(string.format("Invalid 'limit': expected an integer, but got '%s' instead.", q.limit),
        "limit", "invalid_type")
    end
    p.limit = tonumber(q.limit)
    if p.limit < 1 then
      return nil, error_body(string.format(
        "Invalid 'limit': integer below minimum value. Expected a value >= 1, but got %s instead.", q.limit),
        "limit", "integer_below_min_value")
    elseif p.limit > 100 then
      return nil, error_body(string.format(
        "Invalid 'limit': integer above maximum value. Expected a value <= 100, but got %s instead.", q.limit),
        "limit", "integer_above_max_value")
    end
  end
  if q.order ~= nil then
    if q.order ~= "asc" and q.order ~= "desc" then
      return nil, error_body(string.format("Invalid value: '%s'. Supported values are: 'asc' and 'desc'.", q.order),
        "order", "invalid_value")
    end
    p.order = q.order
  end
  if q.after ~= nil and q.after ~= "" then p.after = q.after end
  return p
end

local function list_body(values, ids, has_more)
  return json.encode(json.obj(
    "object", "list",
    "data", json.array(values),
    "first_id", ids[1] or null,
    "last_id", ids[#ids] or null,
    "has_more", has_more))
end

---------------------------------------------------------------------------
-- The API object
---------------------------------------------------------------------------

-- opts: api_key (string or nil), fixtures (from Store.load_fixtures)
function M.new(opts)
  local self = setmetatable({ api_key = opts.api_key, fixtures = opts.fixtures }, M)
  self:reset()
  return self
end

function M:reset()
  self.store = Store.new(self.fixtures)
  self.completion_seq = 0
end

-- nil when authorised, else the 401 body.
function M:auth_error(req)
  local h = http.header(req.headers, "authorization")
  local scheme, token = (h or ""):match("^(%S+)%s+(.-)%s*$")
  if not scheme or scheme:lower() ~= "bearer" or token == "" then
    return error_body(NO_KEY_MESSAGE)
  end
  if self.api_key and token ~= self.api_key then
    return error_body("Incorrect API key provided: " .. M.mask_key(token) ..
      ". You can find your API key at https://platform.openai.com/account/api-keys.", nil, "invalid_api_key")
  end
  return nil
end

function M:handle(req, res)
  local path = req.path
  if path:sub(1, 4) ~= "/v1/" then
    return res:send(404, error_body(string.format("Invalid URL (%s %s)", req.method, path)))
  end
  local unauthorised = self:auth_error(req)
  if unauthorised then return res:send(401, unauthorised) end

  local method = req.method
  if path == "/v1/chat/completions" then
    if method == "POST" then return self:create(req, res) end
    if method == "GET" then return self:list(req, res) end
  else
    local raw_id = path:match("^/v1/chat/completions/([^/]+)$")
    if raw_id then
      local id = M.pct_decode(raw_id)
      if method == "GET" then return self:retrieve(id, res) end
      if method == "POST" then return self:update(id, req, res) end
      if method == "DELETE" then return self:delete(id, res) end
    end
    raw_id = path:match("^/v1/chat/completions/([^/]+)/messages$")
    if raw_id and method == "GET" then return self:messages(M.pct_decode(raw_id), req, res) end
  end
  return res:send(404, error_body(string.format("Invalid URL (%s %s)", method, path)))
end

local function not_found(id)
  return error_body(string.format("No chat completion found with id '%s'.", id))
end

function M:retrieve(id, res)
  local entry = self.store:get(id)
  if not entry then return res:send(404, not_found(id)) end
  res:send(200, entry.raw or json.encode(entry.obj))
end

function M:update(id, req, res)
  local body = json.decode(req.body)
  if not json.is_object(body) then return res:send(400, error_body(BAD_JSON_MESSAGE)) end
  local md = body.metadata
  if md == nil then
    return res:send(400, error_body("Missing required parameter: 'metadata'.", "metadata", "missing_required_parameter"))
  end
  if md ~= null and not json.is_object(md) then
    return res:send(400, invalid_type("metadata", "an object", md))
  end
  local entry = self.store:update_metadata(id, md)
  if not entry then return res:send(404, not_found(id)) end
  res:send(200, json.encode(entry.obj))
end

function M:delete(id, res)
  if not self.store:delete(id) then return res:send(404, not_found(id)) end
  res:send(200, json.encode(json.obj("object", "chat.completion.deleted", "id", id, "deleted", true)))
end

function M:list(req, res)
  local q, md_filters = M.parse_query(req.query)
  local p, err = page_params(q)
  if not p then return res:send(400, err) end
  local model = q.model
  local function keep(entry)
    local obj = entry.obj
    if model and obj.model ~= model then return false end
    if #md_filters > 0 then
      local md = obj.metadata
      if not json.is_object(md) then return false end
      for _, f in ipairs(md_filters) do
        if md[f[1]] ~= f[2] then return false end
      end
    end
    return true
  end
  local page, has_more = Store.paginate(self.store:ordered(), p, keep)
  local values, ids = {}, {}
  for i, entry in ipairs(page) do
    values[i] = Store.value(entry)
    ids[i] = entry.id
  end
  res:send(200, list_body(values, ids, has_more))
end

function M:messages(id, req, res)
  local entry = self.store:get(id)
  if not entry then return res:send(404, not_found(id)) end
  local q = M.parse_query(req.query)
  local p, err = page_params(q)
  if not p then return res:send(400, err) end
  local page, has_more = Store.paginate(entry.messages, p)
  local ids = {}
  for i, m in ipairs(page) do ids[i] = m.id end
  res:send(200, list_body(page, ids, has_more))
end

---------------------------------------------------------------------------
-- Create (plain and streamed)
---------------------------------------------------------------------------

-- Validate a create body.  Returns the decoded body or nil, error body.
local function validate_create(raw)
  local body = json.decode(raw)
  if not json.is_object(body) then return nil, error_body(BAD_JSON_MESSAGE) end
  local model = body.model
  if model == nil or model == null or model == "" then
    return nil, error_body("you must provide a model parameter")
  end
  if type(model) ~= "string" then return nil, invalid_type("model", "a string", model) end
  local messages = body.messages
  if messages == nil or messages == null then
    return nil, error_body("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
  end
  if not json.is_array(messages) then return nil, invalid_type("messages", "an array of objects", messages) end
  if #messages == 0 then
    return nil, error_body("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an " ..
      "empty array instead.", "messages", "empty_array")
  end
  for i, m in ipairs(messages) do
    if not json.is_object(m) then
      return nil, invalid_type(string.format("messages[%d]", i - 1), "an object", m)
    end
  end
  local md = body.metadata
  if md ~= nil and md ~= null and not json.is_object(md) then
    return nil, invalid_type("metadata", "an object", md)
  end
  if body.seed ~= nil and body.seed ~= null and not json.is_number(body.seed) then
    return nil, invalid_type("seed", "an integer", body.seed)
  end
  return body
end

local function completion_object(c, content)
  local seed = c.body.seed
  if seed == null then seed = nil end
  return json.obj(
    "id", c.id,
    "object", "chat.completion",
    "created", c.created,
    "model", c.body.model,
    "choices", json.array({ json.obj(
      "index", 0,
      "message", json.obj("role", "assistant", "content", content, "refusal", null),
      "logprobs", null,
      "finish_reason", "stop") }),
    "usage", json.obj(
      "prompt_tokens", c.prompt_tokens,
      "completion_tokens", c.completion_tokens,
      "total_tokens", c.prompt_tokens + c.completion_tokens),
    "service_tier", "default",
    "system_fingerprint", "fp_mock",
    "metadata", c.metadata,
    "seed", seed)
end

function M:create(req, res)
  local body, err = validate_create(req.body)
  if not body then return res:send(400, err) end

  -- X-Mock-Stream-Chunks: N replaces the reply by "tok1 " .. "tokN ".
  local forced = http.header(req.headers, "x-mock-stream-chunks")
  if forced and not forced:match("^%d+$") then
    return res:send(400, error_body("X-Mock-Stream-Chunks must be a non-negative integer", nil, nil))
  end

  self.completion_seq = self.completion_seq + 1
  local prompt_words = 0
  for _, m in ipairs(body.messages) do prompt_words = prompt_words + count_words(message_text(m)) end
  local c = {
    body = body,
    id = "chatcmpl-mock" .. self.completion_seq,
    created = CREATED_BASE + self.completion_seq,
    prompt_tokens = prompt_words,
    metadata = (json.is_object(body.metadata) and body.metadata) or json.obj(),
  }

  -- The reply as a lazily produced sequence of pieces (words with their
  -- trailing space), so 10 000 streamed chunks never exist all at once.
  local count, piece
  if forced then
    count = tonumber(forced)
    piece = function(i) return "tok" .. i .. " " end
  else
    local words = {}
    for w in ("Echo: " .. message_text(body.messages[#body.messages])):gmatch("%S+%s*") do words[#words + 1] = w end
    count = #words
    piece = function(i) return words[i] end
  end
  c.completion_tokens = count
  local function full_text()
    local parts = {}
    for i = 1, count do parts[i] = piece(i) end
    return table.concat(parts)
  end

  local function store_it()
    if body.store == true then
      self.store:put(completion_object(c, full_text()), Store.stored_messages(c.id, body.messages))
    end
  end

  if body.stream ~= true then
    local obj = completion_object(c, full_text())
    store_it()
    return res:send(200, json.encode(obj))
  end
  self:stream(req, res, c, count, piece, store_it)
end

function M:stream(req, res, c, count, piece, on_complete)
  local so = c.body.stream_options
  local include_usage = json.is_object(so) and so.include_usage == true
  local enc = json.encode_string
  local prefix = '{"id":' .. enc(c.id) .. ',"object":"chat.completion.chunk","created":' .. c.created ..
    ',"model":' .. enc(c.body.model) .. ',"system_fingerprint":"fp_mock","choices":['
  local suffix = include_usage and '],"usage":null}' or ']}'
  local function event(delta, finish)
    return "data: " .. prefix .. '{"index":0,"delta":' .. delta .. ',"logprobs":null,"finish_reason":' ..
      finish .. '}' .. suffix .. "\n\n"
  end

  local step = 0 -- 0: role chunk, 1..count: content, then finish, usage, [DONE]
  local stage = "role"
  local function next_event()
    if stage == "role" then
      stage = count > 0 and "content" or "finish"
      return event('{"role":"assistant","content":"","refusal":null}', "null")
    elseif stage == "content" then
      step = step + 1
      if step >= count then stage = "finish" end
      return event('{"content":' .. enc(piece(step)) .. '}', "null")
    elseif stage == "finish" then
      stage = include_usage and "usage" or "done"
      return event("{}", '"stop"')
    elseif stage == "usage" then
      stage = "done"
      return "data: " .. prefix .. '],"usage":{"prompt_tokens":' .. c.prompt_tokens ..
        ',"completion_tokens":' .. c.completion_tokens ..
        ',"total_tokens":' .. (c.prompt_tokens + c.completion_tokens) .. '}}\n\n'
    elseif stage == "done" then
      stage = "end"
      return "data: [DONE]\n\n"
    end
    return nil
  end

  res:start_chunked(200, "text/event-stream", nil, not req.keep_alive)
  res:pump(next_event, on_complete)
end

return M
