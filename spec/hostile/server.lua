-- The hostile server: a small, deliberately misbehaving HTTP/1.1 server for
-- the specs.  Unlike mock/ it does not read each request body before
-- answering, so it can answer early, read slowly, trickle, flood, hang or
-- send raw bytes.
--
--   lua5.4 spec/hostile/server.lua --port 0 [--host 127.0.0.1]
--                                  [--parent-pid PID] [--record-dir DIR]
--
-- Prints exactly one line, `http://127.0.0.1:PORT/v1`, once listening, then
-- serves until SIGTERM/SIGINT, or until --parent-pid is gone.
--
-- The mode is chosen by the first path segment after /v1 (method irrelevant
-- unless noted); what follows it is ignored, so a client whose base URL is
-- .../v1/<mode> reaches the mode with any of its API paths; query values
-- are %XX-decoded ("+" stays "+").  Timed modes send the head
-- at once and their k-th timed piece at k*every_ms; what follows the last
-- timed piece is sent right after it.  Every SSE event is one HTTP chunk.
--
--   POST /v1/early/<name>[/...]   200 text/event-stream head as soon as the request
--       head is complete; then waits 300 ms, reads the body (Content-Length
--       or chunked) at most 1 MiB per 20 ms, stores it as DIR/<name>.body
--       (appears, via rename, only once complete), sends
--       `data: {"received":N}\n\n`, `data: [DONE]\n\n`, last chunk.
--       <name> is [A-Za-z0-9_-][A-Za-z0-9._-]*.  No 100 Continue.
--   /v1/trickle?bytes=N&every_ms=M&text=T   T (default `data: {"choices":[]}`
--       + "\n\n") repeated and cut to N bytes (default #T), one byte per
--       chunk every M ms (default 100); then `data: [DONE]\n\n`, last chunk.
--   /v1/ping?count=N&every_ms=M   N (default 3) chunks `: ping\n\n` every M
--       ms (default 200); then `data: {"id":"after-pings","choices":[]}\n\n`,
--       `data: [DONE]\n\n`, last chunk.
--   /v1/slow-events?count=N&every_ms=M&size=S&first_ms=F   N (default 3)
--       events `data: {"n":i,"pad":"<S x's>"}\n\n` every M ms (default 100,
--       S default 0), the first one after F ms (default M); then [DONE],
--       last chunk.
--   /v1/flood?size=S&count=N   N (default 1000) events
--       `data: {"n":i,"pad":"xx…"}\n\n` of exactly S bytes each (default
--       1024; at least the bare event), written in ~64 KiB batches, the next
--       batch only once the previous write completed; then [DONE], last chunk.
--   /v1/trailers, /v1/trailers-sse   chunked `{"ok":true}` (JSON) or
--       `data: {"choices":[]}\n\n` + `data: [DONE]\n\n` (SSE); head has
--       `Trailer: x-trailer-test` and `X-Request-Id: req_head`; trailer
--       section `X-Trailer-Test: from-trailer`, `X-Request-Id: req_trailer`.
--   /v1/hang       reads the request, never answers, closes when the peer does.
--   /v1/delay?ms=M `{"ok":true}` (Content-Length) after M ms (default 1000).
--   /v1/files/.../<name>   DIR/<name>.json (JSON, Content-Length,
--       X-Request-Id: req_<name>), or 404.
--   /v1/raw?b64=B  the base64-decoded B (standard or URL-safe alphabet) as the
--       whole response, verbatim; then closes.
--   anything else  404 with an OpenAI-style JSON error.
--   GET /__hostile/stats   {"connections":C,"requests":R}
--   POST /__hostile/reset  zeroes both; {"ok":true}
--
-- R counts requests outside /__hostile/ whose head arrived.  C counts TCP
-- connections accepted since the last reset, plus older ones that carried
-- such a request since then; a connection whose first request is a control
-- request is not counted.  Bad parameters get a 400 JSON error; requests
-- with `Connection: close` (or HTTP/1.0) are answered and then closed.

-- The sibling folder mock/ holds what the test servers share.
package.path = ((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/../../?.lua;" .. package.path
local uv = require("luv")
local serve = require("mock.serve")

local function die(msg) serve.die("hostile server", msg) end

local opts = serve.parse_args("hostile server", arg or {}, {
  ["record-dir"] = function(value)
    local st = uv.fs_stat(value)
    if not st or st.type ~= "directory" then return nil, "--record-dir is not a directory: " .. value end
    return value
  end,
})
opts.record_dir = opts["record-dir"]

---------------------------------------------------------------------------
-- Small codecs
---------------------------------------------------------------------------

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function error_json(message, kind)
  return '{"error":{"message":' .. json_string(message) .. ',"type":"' .. (kind or "invalid_request_error") ..
    '","param":null,"code":null}}'
end

local function percent_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function parse_query(query)
  local q = {}
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    q[percent_decode(k)] = percent_decode(v)
  end
  return q
end

local B64 = {}
do
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  for i = 1, 64 do B64[alphabet:byte(i)] = i - 1 end
  B64[("-"):byte()], B64[("_"):byte()] = 62, 63 -- URL-safe alphabet too
end

-- Base64 (padding optional); nil when malformed.
local function b64decode(s)
  local data, pad = s:match("^([^=]*)(=*)$")
  if not data or #pad > 2 or #data % 4 == 1 or (#pad > 0 and (#data + #pad) % 4 ~= 0) then return nil end
  local out, bits, nbits = {}, 0, 0
  for i = 1, #data do
    local v = B64[data:byte(i)]
    if not v then return nil end
    bits, nbits = ((bits << 6) | v) & 0xffffff, nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      out[#out + 1] = string.char((bits >> nbits) & 0xff)
    end
  end
  return table.concat(out)
end

---------------------------------------------------------------------------
-- HTTP pieces
---------------------------------------------------------------------------

local REASONS = { [100] = "Continue", [200] = "OK", [400] = "Bad Request", [404] = "Not Found",
  [405] = "Method Not Allowed", [500] = "Internal Server Error" }
local LAST_CHUNK = "0\r\n\r\n"
local DONE = "data: [DONE]\n\n"
local MAX_HEAD = 64 * 1024
local EARLY_WAIT_MS, EARLY_TICK_MS, EARLY_RATE = 300, 20, 1024 * 1024
local FLOOD_BATCH = 64 * 1024

local function chunk(data)
  return string.format("%x\r\n", #data) .. data .. "\r\n"
end

local function has_token(value, token)
  for part in (value or ""):gmatch("[^,]+") do
    if part:match("^%s*(.-)%s*$"):lower() == token then return true end
  end
  return false
end

-- Parse a request head; returns a request table or nil, reason.
local function parse_head(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = line end
  local method, target, minor = lines[1]:match("^(%u+) (%S+) HTTP/1%.(%d)$")
  if not method then return nil, "bad request line" end
  local h = {}
  for i = 2, #lines do
    local name, value = lines[i]:match("^([!#$%%&'*+%-.%^_`|~%w]+):[ \t]*(.-)[ \t]*$")
    if not name then return nil, "bad header line" end
    name = name:lower()
    if name == "content-length" and h[name] and h[name]:match("^[^,]*") ~= value then -- request smuggling
      return nil, "bad content-length"
    end
    h[name] = h[name] and (h[name] .. ", " .. value) or value
  end
  if h["content-length"] and h["content-length"]:find(",") then -- equal duplicates
    h["content-length"] = h["content-length"]:match("^[^,]*")
  end
  local path, query = target:match("^([^?]*)%??(.*)$")
  local keep_alive
  if minor == "0" then
    keep_alive = has_token(h.connection, "keep-alive")
  else
    keep_alive = not has_token(h.connection, "close")
  end
  return { method = method, target = target, path = path, query = query, h = h, keep_alive = keep_alive }
end

---------------------------------------------------------------------------
-- State
---------------------------------------------------------------------------

local state = { connections = 0, requests = 0, generation = 1 }
local conns = {}
local conn_seq, request_seq = 0, 0

local function debug_log(...)
  if os.getenv("HOSTILE_DEBUG") then io.stderr:write("hostile server: ", ...) io.stderr:write("\n") end
end

---------------------------------------------------------------------------
-- Connections
---------------------------------------------------------------------------

local Conn = {}
Conn.__index = Conn

local modes = {} -- filled below: modes[name](conn, req, query)

function Conn:set_reading(on)
  if self.closed or self.reading == on then return end
  self.reading = on
  if on then
    pcall(uv.read_start, self.tcp, self.on_read)
  else
    pcall(uv.read_stop, self.tcp)
  end
end

-- A one-shot timer owned by the connection (closed with it).
function Conn:after(ms, fn)
  local t = uv.new_timer()
  self.timers[t] = true
  t:start(math.max(0, ms), 0, function()
    self.timers[t] = nil
    t:close()
    if self.closed then return end
    local ok, err = pcall(fn)
    if not ok then debug_log(tostring(err)) self:close() end
  end)
  return t
end

function Conn:close()
  if self.closed then return end
  self.closed = true
  for t in pairs(self.timers) do
    if not t:is_closing() then t:close() end
  end
  self.timers = {}
  if self.cleanup then pcall(self.cleanup) end
  conns[self] = nil
  if not self.tcp:is_closing() then self.tcp:close() end
end

-- Close once every queued write has been flushed (FIN, not RST).
function Conn:close_after_flush()
  if self.closed or self.closing then return end
  self.closing = true
  local ok, req = pcall(uv.shutdown, self.tcp, function() self:close() end)
  if not ok or not req then self:close() end
end

-- Queue bytes; `cb()` runs once the kernel took them.  A dead peer closes
-- the connection instead (and `cb` never runs).
function Conn:write(data, cb)
  if self.closed or self.closing then return false end
  local ok, req = pcall(uv.write, self.tcp, data, function(err)
    if err then return self:close() end
    if cb and not self.closed then
      local cok, cerr = pcall(cb)
      if not cok then debug_log(tostring(cerr)) self:close() end
    end
  end)
  if not ok or not req then
    self:close()
    return false
  end
  return true
end

-- Status line and headers; Connection: close when `close` or when the
-- request did not ask for keep-alive.
function Conn:head(status, headers, close)
  local out = { string.format("HTTP/1.1 %d %s\r\n", status, REASONS[status] or "Unknown") }
  local has_id = false
  for _, h in ipairs(headers) do
    out[#out + 1] = h[1] .. ": " .. h[2] .. "\r\n"
    if h[1]:lower() == "x-request-id" then has_id = true end
  end
  if not has_id then
    request_seq = request_seq + 1
    out[#out + 1] = "X-Request-Id: req_hostile_" .. request_seq .. "\r\n"
  end
  if close or (self.req and not self.req.keep_alive) then out[#out + 1] = "Connection: close\r\n" end
  out[#out + 1] = "\r\n"
  return table.concat(out)
end

-- The response is complete: go on with the next request, or close.
function Conn:finish()
  if self.closed then return end
  if not self.req.keep_alive or self.peer_eof then return self:close_after_flush() end
  self.req, self.phase, self.cleanup = nil, "head", nil
  self:set_reading(true)
  self:advance()
end

-- A complete Content-Length response.
function Conn:send(status, body, content_type)
  local headers = { { "Content-Type", content_type or "application/json" }, { "Content-Length", #body } }
  self:write(self:head(status, headers) .. body, function() self:finish() end)
end

-- Answer and close: for requests whose body we will not read.
function Conn:refuse(status, message)
  local body = error_json(message)
  self:write(self:head(status, { { "Content-Type", "application/json" }, { "Content-Length", #body } }, true) .. body)
  self:close_after_flush()
end

function Conn:start_chunked(content_type, extra)
  local headers = { { "Content-Type", content_type }, { "Transfer-Encoding", "chunked" } }
  for _, h in ipairs(extra or {}) do headers[#headers + 1] = h end
  return self:write(self:head(200, headers))
end

-- Send `framed` (already chunked bytes, may be ""), `pieces` (each its own
-- chunk), the last chunk with `trailer` fields, then finish.
function Conn:end_chunked(pieces, trailer, framed)
  local out = { framed }
  for _, p in ipairs(pieces) do out[#out + 1] = chunk(p) end
  out[#out + 1] = trailer and ("0\r\n" .. trailer .. "\r\n") or LAST_CHUNK
  self:write(table.concat(out), function() self:finish() end)
end

-- Calls each(i) for i = 1..n, the i-th at i*ms, then done().
function Conn:tick(ms, n, each, done, first_ms)
  local i = 0
  local function step()
    if i >= n then return done() end
    self:after(i == 0 and first_ms or ms, function()
      i = i + 1
      each(i)
      step()
    end)
  end
  step()
end

-- Hand the body bytes in self.buf to `sink`; true once the body is complete,
-- false when more is needed, nil, reason when it is malformed.
function Conn:read_body(sink)
  local b = self.body
  while true do
    if b.phase == "data" then
      local take = math.min(b.left, #self.buf)
      if take > 0 then
        sink(self.buf:sub(1, take))
        self.buf = self.buf:sub(take + 1)
        b.left = b.left - take
        b.total = b.total + take
      end
      if b.left > 0 then return false end
      if not b.chunked then return true end
      b.phase = "crlf"
    elseif b.phase == "crlf" then
      if #self.buf < 2 then return false end
      if self.buf:sub(1, 2) ~= "\r\n" then return nil, "bad chunk end" end
      self.buf = self.buf:sub(3)
      b.phase = "size"
    else -- "size" or "trailer": one line at a time
      local le = self.buf:find("\r\n", 1, true)
      if not le then
        if #self.buf > 4096 then return nil, "chunk line too long" end
        return false
      end
      local line = self.buf:sub(1, le - 1)
      self.buf = self.buf:sub(le + 2)
      if b.phase == "trailer" then
        if line == "" then return true end
      else
        local hex = line:match("^(%x+)[ \t]*;?")
        if not hex or #hex > 12 then return nil, "bad chunk size" end
        b.left = tonumber(hex, 16)
        b.phase = b.left == 0 and "trailer" or "data"
      end
    end
  end
end

local function discard() end

-- Parse what is buffered and drive the request state machine.
function Conn:advance()
  while not self.closed and not self.closing do
    if self.phase == "head" then
      self.buf = self.buf:gsub("^[\r\n]+", "") -- stray CRLFs between requests
      local s, e = self.buf:find("\r?\n\r?\n")
      if not s then
        if #self.buf > MAX_HEAD then return self:refuse(400, "Bad request: request head too large") end
        return
      end
      local req, why = parse_head(self.buf:sub(1, s - 1))
      if not req then return self:refuse(400, "Bad request: " .. why) end
      self.buf = self.buf:sub(e + 1)
      self.req = req
      local cl, te = req.h["content-length"], req.h["transfer-encoding"]
      if te then
        if not has_token(te, "chunked") then return self:refuse(400, "Bad request: unsupported transfer-encoding") end
        self.body = { chunked = true, phase = "size", left = 0, total = 0 }
      elseif cl then
        if not cl:match("^%d+$") or #cl > 15 then return self:refuse(400, "Bad request: bad content-length") end
        self.body = { phase = "data", left = tonumber(cl), total = 0 }
      else
        self.body = { phase = "data", left = 0, total = 0 }
      end
      self:count(req)
      local name = req.method == "POST" and req.path:match("^/v1/early/([^/]*)")
      if name then
        self.phase = "early-wait"
        return modes.early(self, req, name)
      end
      self.phase = "body"
      if has_token(req.h.expect, "100-continue") and (te or (cl and cl ~= "0")) then
        self:write("HTTP/1.1 100 Continue\r\n\r\n")
      end
    elseif self.phase == "body" or self.phase == "early" then
      local done, why = self:read_body(self.sink or discard)
      if done == nil then return self:refuse(400, "Bad request: " .. why) end
      if not done then return end
      if self.phase == "early" then return self.early_done() end
      self.phase = "busy"
      return self:dispatch(self.req)
    else
      return -- busy or waiting: the response drives what happens next
    end
  end
end

-- Stats bookkeeping; see the header comment for what is counted.
function Conn:count(req)
  local control = req.path:sub(1, 11) == "/__hostile/"
  if control then
    if self.first_request and self.counted == state.generation then
      state.connections = state.connections - 1
      self.counted = nil
    end
    self.control = self.control or self.first_request
  else
    state.requests = state.requests + 1
    if not self.control and self.counted ~= state.generation then
      state.connections = state.connections + 1
      self.counted = state.generation
    end
  end
  self.first_request = false
end

function Conn:dispatch(req)
  local ok, err = pcall(function()
    if req.path:sub(1, 11) == "/__hostile/" then return modes.control(self, req) end
    local mode = req.path:match("^/v1/([%w-]+)$") or req.path:match("^/v1/([%w-]+)/")
    if mode and modes[mode] and mode ~= "control" and mode ~= "early" then
      return modes[mode](self, req, parse_query(req.query))
    end
    if req.path:match("^/v1/early/") then
      return self:send(405, error_json("Method " .. req.method .. " not allowed for " .. req.path))
    end
    self:send(404, error_json(string.format("Invalid URL (%s %s)", req.method, req.path)))
  end)
  if not ok then
    debug_log(tostring(err))
    self:refuse(500, "hostile server error: " .. tostring(err))
  end
end

-- The peer will send no more (FIN).
function Conn:on_eof()
  self.peer_eof = true
  -- Only a response already being sent is worth completing.
  if self.phase ~= "busy" or self.hanging then self:close() end
end

local function accept(server)
  local tcp = uv.new_tcp()
  if not pcall(server.accept, server, tcp) then return tcp:close() end
  pcall(tcp.nodelay, tcp, true) -- single-byte chunks must leave at once
  conn_seq = conn_seq + 1
  local conn = setmetatable({
    tcp = tcp, buf = "", phase = "head", timers = {}, id = conn_seq,
    first_request = true, counted = state.generation,
  }, Conn)
  state.connections = state.connections + 1
  conns[conn] = true
  conn.on_read = function(err, data)
    if conn.closed then return end
    if err then return conn:close() end
    if not data then return conn:on_eof() end
    if conn.hanging then return end -- nobody will ever look at it
    conn.buf = conn.buf .. data
    if conn.budget then
      conn.budget = conn.budget - #data
      if conn.budget <= 0 then conn:set_reading(false) end
    end
    local ok, perr = pcall(conn.advance, conn)
    if not ok then
      debug_log(tostring(perr))
      conn:close()
    end
  end
  conn:set_reading(true)
end

---------------------------------------------------------------------------
-- Modes
---------------------------------------------------------------------------

-- Parameter `name` of query `q` as a non-negative integer (default when
-- absent); raises a 400 when malformed.
local function int_param(q, name, default)
  local v = q[name]
  if v == nil or v == "" then return default end
  local n = math.tointeger(tonumber(v))
  if not n or n < 0 then error({ bad_param = name }, 0) end
  return n
end

-- Wrap a mode so bad parameters answer 400 instead of 500.
local function with_params(fn)
  return function(conn, req, q)
    local ok, err = pcall(fn, conn, req, q)
    if ok then return end
    if type(err) == "table" and err.bad_param then
      if conn.req and not conn.closed then -- nothing has been written yet
        return conn:send(400, error_json("Invalid value for query parameter '" .. err.bad_param .. "'"))
      end
      return
    end
    error(err, 0)
  end
end

local SSE = "text/event-stream"

modes.early = function(conn, req, name)
  if not opts.record_dir then return conn:refuse(500, "early mode needs --record-dir") end
  if not name:match("^[%w_%-][%w_.%-]*$") then return conn:refuse(400, "bad record name " .. name) end
  local final = opts.record_dir .. "/" .. name .. ".body"
  local part = final .. ".part" .. conn.id
  local f, ferr = io.open(part, "wb")
  if not f then return conn:refuse(500, "cannot record: " .. tostring(ferr)) end
  conn.cleanup = function()
    f:close()
    os.remove(part)
  end
  conn.sink = function(piece) assert(f:write(piece)) end
  -- The point of this mode: the answer starts before any body byte is read.
  conn:set_reading(false)
  conn:start_chunked(SSE)
  local ticker
  conn.early_done = function()
    if ticker and not ticker:is_closing() then ticker:close() end
    conn.timers[ticker] = nil
    conn.budget, conn.sink, conn.early_done, conn.cleanup = nil, nil, nil, nil
    f:close()
    assert(os.rename(part, final))
    conn.phase = "busy"
    conn:end_chunked({ string.format('data: {"received":%d}\n\n', conn.body.total), DONE })
  end
  conn:after(EARLY_WAIT_MS, function()
    -- Bytes that came with the head count against the first slice.
    conn.phase, conn.budget = "early", EARLY_RATE - #conn.buf
    ticker = uv.new_timer()
    conn.timers[ticker] = true
    ticker:start(EARLY_TICK_MS, EARLY_TICK_MS, function()
      if conn.closed or not conn.budget then return end
      conn.budget = math.min(conn.budget + EARLY_RATE, EARLY_RATE)
      if conn.budget > 0 then conn:set_reading(true) end
    end)
    if conn.peer_eof then return conn:close() end
    conn:advance()
    if conn.budget and conn.budget > 0 then conn:set_reading(true) end
  end)
end

modes.trickle = with_params(function(conn, _, q)
  local text = q.text or 'data: {"choices":[]}\n\n'
  if text == "" then error({ bad_param = "text" }, 0) end
  local bytes = int_param(q, "bytes", #text)
  local every = int_param(q, "every_ms", 100)
  conn:start_chunked(SSE)
  conn:tick(every, bytes, function(i)
    local k = (i - 1) % #text + 1
    conn:write(chunk(text:sub(k, k)))
  end, function() conn:end_chunked({ DONE }) end)
end)

modes.ping = with_params(function(conn, _, q)
  local count, every = int_param(q, "count", 3), int_param(q, "every_ms", 200)
  conn:start_chunked(SSE)
  conn:tick(every, count, function() conn:write(chunk(": ping\n\n")) end, function()
    conn:end_chunked({ 'data: {"id":"after-pings","choices":[]}\n\n', DONE })
  end)
end)

modes["slow-events"] = with_params(function(conn, _, q)
  local count, every = int_param(q, "count", 3), int_param(q, "every_ms", 100)
  local pad = string.rep("x", int_param(q, "size", 0))
  conn:start_chunked(SSE)
  conn:tick(every, count, function(i)
    conn:write(chunk(string.format('data: {"n":%d,"pad":"%s"}\n\n', i, pad)))
  end, function() conn:end_chunked({ DONE }) end, int_param(q, "first_ms", every))
end)

modes.flood = with_params(function(conn, _, q)
  local size, count = int_param(q, "size", 1024), int_param(q, "count", 1000)
  local i = 0
  local function batch()
    local out, bytes = {}, 0
    while i < count and bytes < FLOOD_BATCH do
      i = i + 1
      local bare = 23 + #tostring(i) -- `data: {"n":i,"pad":""}\n\n`
      local event = string.format('data: {"n":%d,"pad":"%s"}\n\n', i, string.rep("x", size - bare))
      out[#out + 1] = chunk(event)
      bytes = bytes + #event
    end
    if i >= count then return conn:end_chunked({ DONE }, nil, table.concat(out)) end
    -- The next batch is built only once the kernel took this one, so a
    -- client that does not read holds the server to one batch.
    conn:write(table.concat(out), batch)
  end
  conn:start_chunked(SSE)
  batch()
end)

local TRAILER = "X-Trailer-Test: from-trailer\r\nX-Request-Id: req_trailer\r\n"
local TRAILER_HEAD = { { "Trailer", "x-trailer-test" }, { "X-Request-Id", "req_head" } }

modes.trailers = function(conn)
  conn:start_chunked("application/json", TRAILER_HEAD)
  conn:end_chunked({ '{"ok":true}' }, TRAILER)
end

modes["trailers-sse"] = function(conn)
  conn:start_chunked(SSE, TRAILER_HEAD)
  conn:end_chunked({ 'data: {"choices":[]}\n\n', DONE }, TRAILER)
end

modes.hang = function(conn)
  conn.hanging = true
  conn.buf = ""
  if conn.peer_eof then conn:close() end
end

modes.delay = with_params(function(conn, _, q)
  local ms = int_param(q, "ms", 1000)
  conn:after(ms, function() conn:send(200, '{"ok":true}') end)
end)

-- The file DIR/<name>.json, where <name> is the last path segment.
modes.files = function(conn, req)
  local name = req.path:match("/([%w_%-][%w_.%-]*)$")
  local f = opts.record_dir and name and io.open(opts.record_dir .. "/" .. name .. ".json", "rb")
  if not f then
    return conn:send(404, error_json(string.format("No file for %s", req.path)))
  end
  local body = f:read("a")
  f:close()
  conn:write(conn:head(200, { { "Content-Type", "application/json" }, { "Content-Length", #body },
                              { "X-Request-Id", "req_" .. name } }) .. body, function() conn:finish() end)
end

modes.raw = function(conn, _, q)
  local bytes = b64decode(q.b64 or "")
  if not bytes or bytes == "" then
    return conn:send(400, error_json("Invalid value for query parameter 'b64'"))
  end
  conn:write(bytes)
  conn:close_after_flush()
end

modes.control = function(conn, req)
  local route = req.method .. " " .. req.path
  if route == "GET /__hostile/stats" then
    return conn:send(200, string.format('{"connections":%d,"requests":%d}', state.connections, state.requests))
  elseif route == "POST /__hostile/reset" then
    state.connections, state.requests = 0, 0
    state.generation = state.generation + 1
    return conn:send(200, '{"ok":true}')
  end
  conn:send(404, error_json(string.format("Invalid URL (%s %s)", req.method, req.path)))
end

---------------------------------------------------------------------------
-- Start
---------------------------------------------------------------------------

local server = uv.new_tcp()
local listening, lerr = pcall(function()
  assert(server:bind(opts.host, opts.port))
  assert(server:listen(128, function(err)
    if err then return end
    local ok, aerr = pcall(accept, server)
    if not ok then debug_log(tostring(aerr)) end
  end))
end)
if not listening then die("cannot listen on " .. opts.host .. ":" .. opts.port .. ": " .. tostring(lerr)) end

serve.run(opts, server:getsockname().port, function()
  for conn in pairs(conns) do conn:close() end
  if not server:is_closing() then server:close() end
end)
