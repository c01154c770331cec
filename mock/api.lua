-- The /v1 API: authentication, routing and the chat-completions resource.
-- The Responses and Conversations resources live in mock/responses.lua and
-- mock/conversations.lua; what all of them share, in mock/wire.lua.
--
-- Replies are deterministic (the assistant echoes the last message) so specs
-- can assert exact values.  Numbers from request bodies are echoed as their
-- raw text (see mock.json), never through floats.
--
-- Request headers that steer the mock (the real API ignores them):
--   X-Mock-Stream-Chunks: N      the reply is "tok1 " .. "tokN " (N pieces,
--                                N stream events) instead of the echo;
--                                chat completions and responses
--   X-Mock-Response-Outcome: O   how a response ends: completed (default),
--                                failed (response.failed), incomplete
--                                (response.incomplete, max_output_tokens) or
--                                error (an `error` event; a 500 when not
--                                streamed); the last three after at most 2
--                                text deltas
--   X-Mock-Background-Ms: MS     a background response is queued for MS/2,
--                                in progress until MS, then ends (default
--                                200)

local json = require("mock.json")
local http = require("mock.http")
local wire = require("mock.wire")
local Store = require("mock.store")
local Responses = require("mock.responses")
local Conversations = require("mock.conversations")

local M = {}
M.__index = M

local CREATED_BASE = 1738960610
local null = json.null

local error_body, invalid_type, page_params = wire.error_body, wire.invalid_type, wire.page_params
local BAD_JSON_MESSAGE = wire.BAD_JSON_MESSAGE

local NO_KEY_MESSAGE = "You didn't provide an API key. You need to provide your API key in an Authorization header " ..
  "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if " ..
  "you're accessing the API from your browser and are prompted for a username. You can obtain an API key from " ..
  "https://platform.openai.com/account/api-keys."

-- Like the real API: only the first 3 and last 4 characters survive.
function M.mask_key(key)
  if #key < 8 then return string.rep("*", #key) end
  return key:sub(1, 3) .. string.rep("*", #key - 7) .. key:sub(-4)
end

M.pct_decode = wire.pct_decode
M.parse_query = wire.parse_query

local message_text = Store.message_text

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
  if self.responses then self.responses:close() end -- stops background work
  self.conversations = Conversations.new(CREATED_BASE)
  self.responses = Responses.new(self.conversations, CREATED_BASE)
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

-- The routes: method, path pattern (captures are the ids, percent-decoded),
-- the resource that answers (nil: this object, chat completions) and its
-- handler, called as handler(resource, req, res, ids...).
local ROUTES = {
  { "POST", "^/v1/chat/completions$", nil, "create" },
  { "GET", "^/v1/chat/completions$", nil, "list" },
  { "GET", "^/v1/chat/completions/([^/]+)$", nil, "retrieve" },
  { "POST", "^/v1/chat/completions/([^/]+)$", nil, "update" },
  { "DELETE", "^/v1/chat/completions/([^/]+)$", nil, "delete" },
  { "GET", "^/v1/chat/completions/([^/]+)/messages$", nil, "messages" },
  { "POST", "^/v1/responses$", "responses", "create" },
  { "POST", "^/v1/responses/input_tokens$", "responses", "input_tokens" },
  { "POST", "^/v1/responses/compact$", "responses", "compact" },
  { "GET", "^/v1/responses/([^/]+)$", "responses", "retrieve" },
  { "DELETE", "^/v1/responses/([^/]+)$", "responses", "delete" },
  { "POST", "^/v1/responses/([^/]+)/cancel$", "responses", "cancel" },
  { "GET", "^/v1/responses/([^/]+)/input_items$", "responses", "input_items" },
  { "POST", "^/v1/conversations$", "conversations", "create" },
  { "GET", "^/v1/conversations/([^/]+)$", "conversations", "retrieve" },
  { "POST", "^/v1/conversations/([^/]+)$", "conversations", "update" },
  { "DELETE", "^/v1/conversations/([^/]+)$", "conversations", "delete" },
  { "POST", "^/v1/conversations/([^/]+)/items$", "conversations", "add_items" },
  { "GET", "^/v1/conversations/([^/]+)/items$", "conversations", "list_items" },
  { "GET", "^/v1/conversations/([^/]+)/items/([^/]+)$", "conversations", "retrieve_item" },
  { "DELETE", "^/v1/conversations/([^/]+)/items/([^/]+)$", "conversations", "delete_item" },
}

local function decoded(first, ...)
  if first == nil then return end
  return M.pct_decode(first), decoded(...)
end

function M:handle(req, res)
  local path, method = req.path, req.method
  if path:sub(1, 4) ~= "/v1/" then
    return res:send(404, error_body(string.format("Invalid URL (%s %s)", method, path)))
  end
  local unauthorised = self:auth_error(req)
  if unauthorised then return res:send(401, unauthorised) end

  for _, route in ipairs(ROUTES) do
    if route[1] == method then
      local captures = { path:match(route[2]) }
      if captures[1] then
        local resource = route[3] and self[route[3]] or self
        -- a pattern without captures yields the whole match: no ids then
        if not route[2]:find("(", 1, true) then captures = {} end
        return resource[route[4]](resource, req, res, decoded(table.unpack(captures)))
      end
    end
  end
  return res:send(404, error_body(string.format("Invalid URL (%s %s)", method, path)))
end

local function not_found(id)
  return error_body(string.format("No chat completion found with id '%s'.", id))
end

function M:retrieve(_, res, id)
  local entry = self.store:get(id)
  if not entry then return res:send(404, not_found(id)) end
  res:send(200, entry.raw or json.encode(entry.obj))
end

function M:update(req, res, id)
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

function M:delete(_, res, id)
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
  res:send(200, wire.list_body(values, ids, has_more))
end

function M:messages(req, res, id)
  local entry = self.store:get(id)
  if not entry then return res:send(404, not_found(id)) end
  wire.send_page(req, res, entry.messages)
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

  local count, piece = wire.reply_pieces(req, message_text(body.messages[#body.messages]))
  if not count then return res:send(400, piece) end

  self.completion_seq = self.completion_seq + 1
  local prompt_words = 0
  for _, m in ipairs(body.messages) do prompt_words = prompt_words + wire.count_words(message_text(m)) end
  local c = {
    body = body,
    id = "chatcmpl-mock" .. self.completion_seq,
    created = CREATED_BASE + self.completion_seq,
    prompt_tokens = prompt_words,
    completion_tokens = count,
    metadata = (json.is_object(body.metadata) and body.metadata) or json.obj(),
  }
  local function full_text() return wire.joined(count, piece) end

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
