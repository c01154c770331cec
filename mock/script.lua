-- Scripted responses: a FIFO queue of canned (often deliberately broken)
-- responses that replace the normal behaviour of the next matching /v1
-- requests.  Specs use it to drive a client through retries, timeouts,
-- truncated bodies and awkwardly split SSE streams.
--
-- A response R (all fields optional):
--   match           {method=, path=}: only requests with that method and whose
--                   raw target starts with path consume R
--   status          default 200
--   headers         {name = value}; overrides defaults by case-insensitive
--                   name; false/null removes a header (x-request-id included)
--   body | json     raw string, or a JSON value to encode (raw numbers kept);
--                   a non-empty body defaults to content-type application/json
--   delay_ms        wait before the status line (also before reset/passthrough)
--   split_at, body_delay_ms
--                   send head + first split_at body bytes, wait, send the rest
--   truncate        advertise the full Content-Length, send this many body
--                   bytes, close
--   no_content_length  close-delimited body
--   close           Connection: close, close after the response
--   reset           drop the connection (TCP RST) without a byte
--   sse             list of raw strings or {data=, delay_ms=}: each one HTTP
--                   chunk of a text/event-stream response, written separately
--   sse_end         "finish" (terminating chunk) | "close" | "stall"
--   passthrough     apply delay_ms, then the normal behaviour (with `headers`
--                   added to the normal response's headers)

local json = require("mock.json")
local http = require("mock.http")

local M = {}
M.__index = M

function M.new()
  return setmetatable({ queue = {} }, M)
end

function M:clear()
  self.queue = {}
end

-- Append a list of response descriptions.  Returns the queue length, or
-- nil, message when the list is malformed (nothing is queued then).
function M:append(list)
  if not json.is_array(list) then return nil, "'responses' must be an array" end
  for i, r in ipairs(list) do
    if not json.is_object(r) then
      return nil, string.format("responses[%d] must be an object", i - 1)
    end
  end
  for _, r in ipairs(list) do self.queue[#self.queue + 1] = r end
  return #self.queue
end

local function matches(r, req)
  local m = r.match
  if not json.is_object(m) then return true end
  if type(m.method) == "string" and m.method:upper() ~= req.method then return false end
  if type(m.path) == "string" and req.target:sub(1, #m.path) ~= m.path then return false end
  return true
end

-- Remove and return the first queued response that matches `req`.
function M:take(req)
  for i, r in ipairs(self.queue) do
    if matches(r, req) then
      table.remove(self.queue, i)
      return r
    end
  end
  return nil
end

---------------------------------------------------------------------------
-- Playback
---------------------------------------------------------------------------

local function num(v)
  local n = json.tonumber(v)
  if n and n < 0 then n = 0 end
  return n
end

-- R.headers as a {name = value|false} map; null or false removes a header.
local function header_map(h)
  if not json.is_object(h) then return nil end
  local out = {}
  for k, v in pairs(h) do
    if v == false or v == json.null then out[k] = false else out[k] = tostring(v) end
  end
  return out
end

local function play_plain(r, req, res)
  local status = math.tointeger(num(r.status)) or 200
  local body
  if r.body ~= nil and r.body ~= json.null then
    body = type(r.body) == "string" and r.body or json.encode(r.body)
  elseif r.json ~= nil then
    body = json.encode(r.json)
  else
    body = ""
  end
  local truncate = num(r.truncate)
  local close = r.close == true or truncate ~= nil or r.no_content_length == true or not req.keep_alive

  local defaults = {}
  if body ~= "" then defaults[#defaults + 1] = { "content-type", "application/json" } end
  if r.no_content_length ~= true then defaults[#defaults + 1] = { "content-length", tostring(#body) } end
  if close then defaults[#defaults + 1] = { "connection", "close" } end
  local head = http.head(status, res:headers(defaults, header_map(r.headers)))

  local send_len = truncate and math.min(math.floor(truncate), #body) or #body
  local body_delay = num(r.body_delay_ms)
  local split = num(r.split_at)
  split = split and math.min(math.floor(split), send_len) or (body_delay and 0 or send_len)
  local first, rest = body:sub(1, split), body:sub(split + 1, send_len)

  local function finish()
    if close then res:close() else res:finish() end
  end
  res:write(head .. first, function(err)
    if err then return end
    if body_delay or rest ~= "" then
      res:timer(body_delay or 0, function()
        if rest == "" then return finish() end
        res:write(rest, function(e2) if not e2 then finish() end end)
      end)
    else
      finish()
    end
  end)
end

local function play_sse(r, req, res)
  local status = math.tointeger(num(r.status)) or 200
  local items = json.is_array(r.sse) and r.sse or {}
  local ending = r.sse_end
  local announce_close = r.close == true or not req.keep_alive
  res:start_chunked(status, "text/event-stream", header_map(r.headers), announce_close)

  local function step(i)
    if i > #items then
      if ending == "close" then
        return res:close()
      elseif ending == "stall" then
        return res:stall()
      end
      return res:write(http.LAST_CHUNK, function(err)
        if not err then res:finish(announce_close) end
      end)
    end
    local item, data, delay = items[i], nil, nil
    if type(item) == "string" then
      data = item
    elseif json.is_object(item) then
      data = type(item.data) == "string" and item.data or ""
      delay = num(item.delay_ms)
    else
      data = ""
    end
    local function emit()
      -- an empty chunk would be the terminating chunk: skip it
      if data == "" then return step(i + 1) end
      res:write(http.chunk(data), function(err) if not err then step(i + 1) end end)
    end
    if delay and delay > 0 then res:timer(delay, emit) else emit() end
  end
  step(1)
end

-- Play response `r` for `req`; `normal()` runs the regular behaviour
-- (for passthrough).
function M.play(r, req, res, normal)
  local function go()
    if r.reset == true then return res:reset() end
    if r.passthrough == true then
      if json.is_object(r.headers) then res.forced_headers = r.headers end
      return normal()
    end
    if r.sse ~= nil then return play_sse(r, req, res) end
    return play_plain(r, req, res)
  end
  local delay = num(r.delay_ms)
  if delay and delay > 0 then res:timer(delay, go) else go() end
end

return M
