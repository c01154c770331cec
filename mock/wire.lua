-- What every /v1 resource of the mock shares: error bodies in the real API's
-- shape, query strings, cursor-page parameters and list bodies.

local json = require("mock.json")
local http = require("mock.http")
local Store = require("mock.store")

local M = {}

local null = json.null

---------------------------------------------------------------------------
-- Error bodies (shapes of the real API)
---------------------------------------------------------------------------

function M.error_body(message, param, code, etype)
  return json.encode(json.obj("error", json.obj(
    "message", message,
    "type", etype or "invalid_request_error",
    "param", param or null,
    "code", code or null)))
end

M.BAD_JSON_MESSAGE = "We could not parse the JSON body of your request. (HINT: This likely means you aren't " ..
  "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. " ..
  "If you have trouble figuring out how to fix this, please visit https://platform.openai.com/docs/libraries.)"

local function type_phrase(v)
  if v == null then return "null" end
  if json.is_array(v) then return "an array" end
  if json.is_object(v) then return "an object" end
  if json.is_number(v) then return "a number" end
  if type(v) == "boolean" then return "a boolean" end
  return "a string"
end

function M.invalid_type(param, expected, v)
  return M.error_body(string.format("Invalid type for '%s': expected %s, but got %s instead.",
    param, expected, type_phrase(v)), param, "invalid_type")
end

function M.missing(param)
  return M.error_body(string.format("Missing required parameter: '%s'.", param), param, "missing_required_parameter")
end

-- The decoded JSON object of a request body, or nil, the 400 body.  An
-- empty body is an empty object when `optional` (bodies the API lets go).
function M.body_object(req, optional)
  if optional and req.body == "" then return json.obj() end
  local body = json.decode(req.body)
  if not json.is_object(body) then return nil, M.error_body(M.BAD_JSON_MESSAGE) end
  return body
end

-- nil when `v` is absent, null or of the wanted kind, else the 400 body.
-- kind: "string", "boolean", "object", "array"
local KINDS = {
  string = { "a string", function(v) return type(v) == "string" end },
  boolean = { "a boolean", function(v) return type(v) == "boolean" end },
  object = { "an object", json.is_object },
  array = { "an array", json.is_array },
}
function M.check_optional(body, param, kind)
  local v = body[param]
  if v == nil or v == null then return nil end
  local k = KINDS[kind]
  if not k[2](v) then return M.invalid_type(param, k[1], v) end
  return nil
end

---------------------------------------------------------------------------
-- Query strings and cursor pages
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

-- Validated paging parameters, or nil, error body.  `order` defaults to
-- default_order ("asc" for chat completions; the Responses and
-- Conversations lists default to "desc").
function M.page_params(q, default_order)
  local p = { limit = 20, order = default_order or "asc" }
  if q.limit ~= nil then
    if not q.limit:match("^%-?%d+$") then
      return nil, M.error_body(string.format("Invalid 'limit': expected an integer, but got '%s' instead.", q.limit),
        "limit", "invalid_type")
    end
    p.limit = tonumber(q.limit)
    if p.limit < 1 then
      return nil, M.error_body(string.format(
        "Invalid 'limit': integer below minimum value. Expected a value >= 1, but got %s instead.", q.limit),
        "limit", "integer_below_min_value")
    elseif p.limit > 100 then
      return nil, M.error_body(string.format(
        "Invalid 'limit': integer above maximum value. Expected a value <= 100, but got %s instead.", q.limit),
        "limit", "integer_above_max_value")
    end
  end
  if q.order ~= nil then
    if q.order ~= "asc" and q.order ~= "desc" then
      return nil, M.error_body(string.format("Invalid value: '%s'. Supported values are: 'asc' and 'desc'.", q.order),
        "order", "invalid_value")
    end
    p.order = q.order
  end
  if q.after ~= nil and q.after ~= "" then p.after = q.after end
  return p
end

function M.list_body(values, ids, has_more)
  return json.encode(json.obj(
    "object", "list",
    "data", json.array(values),
    "first_id", ids[1] or null,
    "last_id", ids[#ids] or null,
    "has_more", has_more))
end

-- A list body of items that carry their own `id`.
function M.item_list_body(items, has_more)
  local ids = {}
  for i, item in ipairs(items) do ids[i] = item.id end
  return M.list_body(items, ids, has_more)
end

-- Answers a list request with the page of `items` (in creation order, each
-- with an `id`) that its query asks for.
function M.send_page(req, res, items, default_order)
  local p, err = M.page_params(M.parse_query(req.query), default_order)
  if not p then return res:send(400, err) end
  res:send(200, M.item_list_body(Store.paginate(items, p)))
end

-- A route handler that first finds the record an id names: `handler(self,
-- req, res, record, ...)`, called when self:find(res, id) found it (find
-- sends the 404 otherwise).
function M.on_found(handler)
  return function(self, req, res, id, ...)
    local record = self:find(res, id)
    if record then return handler(self, req, res, record, ...) end
  end
end

function M.count_words(s)
  local n = 0
  for _ in s:gmatch("%S+") do n = n + 1 end
  return n
end

---------------------------------------------------------------------------
-- The mock's replies
---------------------------------------------------------------------------

-- The reply to a request whose last message says `text`: "Echo: <text>" cut
-- into words with their trailing space, or, with the header
-- X-Mock-Stream-Chunks: N, the pieces "tok1 " .. "tokN ".  Returns the
-- count and piece(i), or nil and the 400 body.  Pieces are made on demand so
-- 10 000 streamed chunks never exist all at once.
function M.reply_pieces(req, text)
  local forced = http.header(req.headers, "x-mock-stream-chunks")
  if forced then
    if not forced:match("^%d+$") then
      return nil, M.error_body("X-Mock-Stream-Chunks must be a non-negative integer")
    end
    return tonumber(forced), function(i) return "tok" .. i .. " " end
  end
  local words = {}
  for w in ("Echo: " .. text):gmatch("%S+%s*") do words[#words + 1] = w end
  return #words, function(i) return words[i] end
end

-- The first n pieces joined.
function M.joined(n, piece)
  local parts = {}
  for i = 1, n do parts[i] = piece(i) end
  return table.concat(parts)
end

return M
