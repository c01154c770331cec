-- Minimal HTTP/1.1 server layer on luv.
--
-- One connection object per TCP connection: it parses requests (Content-Length
-- or chunked bodies), hands each complete request to the application handler
-- together with a response object, and only looks at the next request once
-- that response has finished (keep-alive, requests served in order).
--
-- The response object exposes deliberately low-level tools (raw writes,
-- timers bound to the connection, abrupt close, reset) because the scripting
-- layer must be able to misbehave on purpose.  Everything that can fail on a
-- dead socket is guarded: a client vanishing mid-response must never take the
-- server down.

local uv = require("luv")

local M = {}

local MAX_HEAD = 64 * 1024
local MAX_BODY = 64 * 1024 * 1024

M.REASONS = {
  [100] = "Continue", [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [301] = "Moved Permanently", [302] = "Found", [304] = "Not Modified",
  [400] = "Bad Request", [401] = "Unauthorized", [402] = "Payment Required", [403] = "Forbidden",
  [404] = "Not Found", [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [410] = "Gone", [413] = "Payload Too Large", [415] = "Unsupported Media Type",
  [418] = "I'm a teapot", [422] = "Unprocessable Entity", [429] = "Too Many Requests",
  [431] = "Request Header Fields Too Large",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

-- Status line plus header block.  `headers` is a list of {name, value}.
function M.head(status, headers)
  local out = { string.format("HTTP/1.1 %d %s\r\n", status, M.REASONS[status] or "Unknown") }
  for _, h in ipairs(headers) do
    out[#out + 1] = h[1] .. ": " .. h[2] .. "\r\n"
  end
  out[#out + 1] = "\r\n"
  return table.concat(out)
end

-- HTTP chunked framing of one piece of body.
function M.chunk(data)
  return string.format("%x\r\n", #data) .. data .. "\r\n"
end
M.LAST_CHUNK = "0\r\n\r\n"

-- Case-insensitive header lookup in a {name, value} list (first match).
function M.header(headers, name)
  name = name:lower()
  for _, h in ipairs(headers) do
    if h[1]:lower() == name then return h[2] end
  end
  return nil
end

-- Does a comma-separated header value contain `token` (case-insensitive)?
local function has_token(value, token)
  if not value then return false end
  for part in value:gmatch("[^,]+") do
    if part:match("^%s*(.-)%s*$"):lower() == token then return true end
  end
  return false
end

---------------------------------------------------------------------------
-- Request parsing
---------------------------------------------------------------------------

local TOKEN = "^[!#$%%&'*+%-.%^_`|~%w]+$"

-- Parse a request head (text before the blank line).  Returns a request
-- table or nil, reason.
local function parse_head(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = line end
  local method, target, major, minor = lines[1]:match("^(%u+) (%S+) HTTP/(%d)%.(%d)$")
  if not method then return nil, "bad request line" end
  if major ~= "1" then return nil, "unsupported HTTP version" end
  local headers = {}
  for i = 2, #lines do
    local name, value = lines[i]:match("^([^:]+):[ \t]*(.-)[ \t]*$")
    if not name or not name:match(TOKEN) then return nil, "bad header line" end
    headers[#headers + 1] = { name, value }
  end
  local path, query = target:match("^([^?]*)%??(.*)$")
  return {
    method = method, target = target, path = path, query = query,
    version = "1." .. minor, headers = headers,
  }
end

-- Incremental chunked-body decoder.  `st` keeps the position in the
-- connection buffer between calls.  Returns "more", "error" or "done", body.
local function chunked_step(st, buf)
  while true do
    if st.phase == "size" then
      local le = buf:find("\r\n", st.pos, true)
      if not le then
        return (#buf - st.pos > 1024) and "error" or "more"
      end
      local hex = buf:sub(st.pos, le - 1):match("^(%x+)[ \t]*;?")
      if not hex or #hex > 8 then return "error" end
      st.size = tonumber(hex, 16)
      st.pos = le + 2
      st.phase = (st.size == 0) and "trailer" or "data"
    elseif st.phase == "data" then
      local stop = st.pos + st.size -- first byte after the chunk data
      if #buf < stop + 1 then return "more" end
      if buf:sub(stop, stop + 1) ~= "\r\n" then return "error" end
      st.parts[#st.parts + 1] = buf:sub(st.pos, stop - 1)
      st.total = st.total + st.size
      if st.total > MAX_BODY then return "error" end
      st.pos = stop + 2
      st.phase = "size"
    else -- trailer fields until an empty line
      local le = buf:find("\r\n", st.pos, true)
      if not le then return "more" end
      local empty = (le == st.pos)
      st.pos = le + 2
      if empty then return "done", table.concat(st.parts) end
    end
  end
end

---------------------------------------------------------------------------
-- Connections
---------------------------------------------------------------------------

local Conn = {}
Conn.__index = Conn

local Response = {}
Response.__index = Response

-- Runs fn() once after `ms`; the timer sits in the set `timers` until then
-- (close_timers stops those still waiting).
function M.one_shot(timers, ms, fn)
  local t = uv.new_timer()
  timers[t] = true
  t:start(math.max(0, math.floor(ms)), 0, function()
    timers[t] = nil
    t:close()
    fn()
  end)
  return t
end

function M.close_timers(timers)
  for t in pairs(timers) do
    if not t:is_closing() then t:close() end
  end
end

local function new_timer_for(conn, ms, fn)
  return M.one_shot(conn.timers, ms, function()
    if conn.closed then return end
    local ok, err = pcall(fn)
    if not ok then conn.server.on_error(err); conn:close() end
  end)
end

-- Marks the connection closed and drops its timers; false if it already was.
function Conn:begin_close()
  if self.closed then return false end
  self.closed = true
  self:response_ended()
  M.close_timers(self.timers)
  self.timers = {}
  if self.on_close then pcall(self.on_close) end
  pcall(uv.read_stop, self.tcp)
  self.server.conns[self] = nil
  return true
end

function Conn:close()
  if self:begin_close() and not self.tcp:is_closing() then self.tcp:close() end
end

-- Close after every queued write has been flushed (FIN, not RST).
function Conn:close_after_flush()
  if self.closed then return end
  self.closing = true
  local ok, req = pcall(uv.shutdown, self.tcp, function() self:close() end)
  if not ok or not req then self:close() end
end

-- Abort with a TCP RST where supported: the harshest "connection reset".
function Conn:reset()
  if not self:begin_close() then return end
  local ok = pcall(uv.tcp_close_reset, self.tcp)
  if not ok and not self.tcp:is_closing() then self.tcp:close() end
end

-- Queue bytes; `cb(err)` runs once the kernel took them (or on failure).
-- Returns false when the connection is already gone.
function Conn:write(data, cb)
  if self.closed or self.closing then
    if cb then cb("closed") end
    return false
  end
  local ok, req = pcall(uv.write, self.tcp, data, function(err)
    if err then self:close() end
    if cb then
      local ok2, e2 = pcall(cb, err)
      if not ok2 then self.server.on_error(e2); self:close() end
    end
  end)
  if not ok or not req then
    self:close()
    if cb then cb("write failed") end
    return false
  end
  return true
end

-- Feed the buffer to the parser; dispatch at most one complete request.
function Conn:process()
  while not self.busy and not self.closed and not self.closing do
    local p = self.pending
    if not p then
      -- tolerate stray CRLFs between requests (RFC 9112 2.2)
      self.buf = self.buf:gsub("^[\r\n]+", "")
      if self.buf == "" then return end
      local s, e = self.buf:find("\r?\n\r?\n")
      if not s then
        if #self.buf > MAX_HEAD then return self:bad_request("request head too large") end
        -- reject garbage as soon as its first line is complete, rather than
        -- waiting for a blank line that may never come
        local first = self.buf:match("^([^\n]*)\n")
        if first and not first:match("^%u+ %S+ HTTP/%d%.%d\r?$") then return self:bad_request("bad request line") end
        return
      end
      local req, why = parse_head(self.buf:sub(1, s - 1))
      if not req then return self:bad_request(why) end
      p = { req = req, pos = e + 1 }
      local te = M.header(req.headers, "transfer-encoding")
      local cl = M.header(req.headers, "content-length")
      if te then
        if not has_token(te, "chunked") then return self:bad_request("unsupported transfer-encoding") end
        p.chunked = { phase = "size", pos = p.pos, parts = {}, total = 0 }
      elseif cl then
        if not cl:match("^%d+$") or #cl > 12 then return self:bad_request("bad content-length") end
        p.length = tonumber(cl)
        if p.length > MAX_BODY then return self:bad_request("body too large") end
        for _, h in ipairs(req.headers) do -- conflicting duplicates are request smuggling
          if h[1]:lower() == "content-length" and h[2] ~= cl then return self:bad_request("bad content-length") end
        end
      else
        p.length = 0
      end
      self.pending = p
      if has_token(M.header(req.headers, "expect"), "100-continue") then
        self:write("HTTP/1.1 100 Continue\r\n\r\n")
      end
    end
    local body, next_pos
    if p.chunked then
      local status, b = chunked_step(p.chunked, self.buf)
      if status == "more" then return end
      if status == "error" then return self:bad_request("bad chunked body") end
      body, next_pos = b, p.chunked.pos
    else
      if #self.buf < p.pos + p.length - 1 then return end
      body = self.buf:sub(p.pos, p.pos + p.length - 1)
      next_pos = p.pos + p.length
    end
    self.buf = self.buf:sub(next_pos)
    self.pending = nil
    local req = p.req
    req.body = body
    local conn_hdr = M.header(req.headers, "connection")
    if req.version == "1.0" then
      req.keep_alive = has_token(conn_hdr, "keep-alive")
    else
      req.keep_alive = not has_token(conn_hdr, "close")
    end
    self:dispatch(req)
  end
end

function Conn:bad_request(why)
  self.busy = true
  local body = '{"error":{"message":"Bad request: ' .. (why or "malformed HTTP") ..
    '","type":"invalid_request_error","param":null,"code":null}}'
  local hdrs = {
    { "content-type", "application/json" },
    { "content-length", tostring(#body) },
    { "x-request-id", self.server.next_request_id() },
    { "connection", "close" },
  }
  self:write(M.head(400, hdrs) .. body)
  self:close_after_flush()
end

function Conn:dispatch(req)
  self.busy = true
  self.current = req
  local res = setmetatable({ conn = self, req = req, request_id = self.server.next_request_id() }, Response)
  req.conn = self
  req.request_id = res.request_id
  local ok, err = pcall(self.server.handler, req, res)
  if not ok then
    self.server.on_error(err)
    if not res.started then
      -- surface the bug in the response: specs see it, stdout stays clean
      local msg = ("mock server error: " .. tostring(err)):gsub('[%c"\\]', " ")
      res:send(500, '{"error":{"message":"' .. msg .. '","type":"server_error","param":null,"code":null}}',
        { close = true })
    else
      self:close()
    end
  end
end

-- The request being answered has its response complete, or cut short by
-- the connection's end: the server's on_response_end(req) hears of it once.
function Conn:response_ended()
  local req = self.current
  if req == nil then return end
  self.current = nil
  if self.server.on_response_end then pcall(self.server.on_response_end, req) end
end

-- Called by the response once it is complete.
function Conn:finished(close)
  if self.closed then return end
  self:response_ended()
  if close or self.peer_eof then return self:close_after_flush() end
  self.busy = false
  self.on_eof = nil
  self:process()
end

---------------------------------------------------------------------------
-- Responses
---------------------------------------------------------------------------

function Response:timer(ms, fn)
  return new_timer_for(self.conn, ms, fn)
end

function Response:write(data, cb)
  self.started = true
  return self.conn:write(data, cb)
end

-- Should the connection be closed after this response?
function Response:must_close(opts)
  return (opts and opts.close) or not self.req.keep_alive
end

-- Build the header list: defaults first, then `extra` (a {name=value} map or
-- a list of pairs) overriding by case-insensitive name; a `false` value
-- removes a header.  x-request-id is always present unless overridden.
function Response:headers(defaults, extra)
  local list = {}
  local function put(name, value)
    local lname = name:lower()
    for i, h in ipairs(list) do
      if h[1]:lower() == lname then
        if value == false then table.remove(list, i) else list[i] = { name, tostring(value) } end
        return
      end
    end
    if value ~= false and value ~= nil then list[#list + 1] = { name, tostring(value) } end
  end
  for _, h in ipairs(defaults) do put(h[1], h[2]) end
  put("x-request-id", self.request_id)
  if extra then
    if extra[1] then
      for _, h in ipairs(extra) do put(h[1], h[2]) end
    else
      local names = {}
      for k in pairs(extra) do names[#names + 1] = k end
      table.sort(names) -- deterministic header order
      for _, k in ipairs(names) do put(k, extra[k]) end
    end
  end
  if self.forced_headers then -- a scripted passthrough's headers win
    local names = {}
    for k in pairs(self.forced_headers) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do put(k, self.forced_headers[k]) end
  end
  return list
end

-- A complete response with Content-Length.
-- opts: content_type (default application/json when body is non-empty),
--       headers (extra/override map), close (force Connection: close).
function Response:send(status, body, opts)
  opts = opts or {}
  body = body or ""
  local close = self:must_close(opts)
  local defaults = {}
  local ctype = opts.content_type
  if ctype == nil and body ~= "" then ctype = "application/json" end
  if ctype then defaults[#defaults + 1] = { "content-type", ctype } end
  defaults[#defaults + 1] = { "content-length", tostring(#body) }
  if close then defaults[#defaults + 1] = { "connection", "close" } end
  local hdrs = self:headers(defaults, opts.headers)
  self:write(M.head(status, hdrs) .. body, function(err)
    if not err then self.conn:finished(close) end
  end)
end

-- Start a chunked response; returns true when the head was queued.
function Response:start_chunked(status, content_type, extra, close)
  local defaults = {
    { "content-type", content_type },
    { "transfer-encoding", "chunked" },
  }
  if close then defaults[#defaults + 1] = { "connection", "close" } end
  self.chunked_close = close
  return self:write(M.head(status, self:headers(defaults, extra)))
end

-- Stream a chunked body produced lazily by `next_piece()` (returns a string,
-- or nil at the end).  Pieces are framed one chunk each and sent in batches;
-- the next batch is produced only when the previous write completed, so a
-- slow reader holds back production instead of growing memory.
function Response:pump(next_piece, on_done)
  local BATCH_BYTES = 64 * 1024
  local function step()
    if self.conn.closed then return end
    local batch, size, ended = {}, 0, false
    while size < BATCH_BYTES do
      local piece = next_piece()
      if piece == nil then ended = true break end
      if piece ~= "" then
        local framed = M.chunk(piece)
        batch[#batch + 1] = framed
        size = size + #framed
      end
    end
    if ended then
      batch[#batch + 1] = M.LAST_CHUNK
      if on_done then on_done() end
      self:write(table.concat(batch), function(err)
        if not err then self.conn:finished(self.chunked_close or not self.req.keep_alive) end
      end)
    else
      self:write(table.concat(batch), function(err)
        if not err then step() end
      end)
    end
  end
  step()
end

-- Let the connection go on to its next request (or close).
function Response:finish(close)
  self.conn:finished(close or not self.req.keep_alive)
end

function Response:close() self.conn:close_after_flush() end
function Response:reset() self.conn:reset() end

-- Keep the connection open with nothing more to send; closed when the peer
-- goes away.
function Response:stall()
  if self.conn.peer_eof then return self.conn:close() end
  self.conn.on_eof = function() self.conn:close() end
end

---------------------------------------------------------------------------
-- Server
---------------------------------------------------------------------------

-- Wrap an accepted TCP handle in a connection and start reading.
local function accept(server)
  local client = uv.new_tcp()
  if not pcall(server.tcp.accept, server.tcp, client) then
    client:close()
    return
  end
  pcall(client.nodelay, client, true) -- SSE pieces must not wait for Nagle
  local conn = setmetatable({
    tcp = client, buf = "", busy = false, closed = false, timers = {}, server = server,
  }, Conn)
  server.conns[conn] = true
  client:read_start(function(err, data)
    if conn.closed then return end
    if err then return conn:close() end
    if not data then
      -- Peer finished sending.  Let a response in progress complete (a
      -- half-closing client still reads), otherwise close now.
      conn.peer_eof = true
      if conn.on_eof then return conn.on_eof() end
      if not conn.busy then return conn:close() end
      return
    end
    conn.buf = conn.buf .. data
    local ok, perr = pcall(conn.process, conn)
    if not ok then
      server.on_error(perr)
      conn:close()
    end
  end)
end

-- Bind and listen; fills server.tcp and server.port.  Returns true or nil, err.
local function listen(server, host, port)
  local tcp = uv.new_tcp()
  server.tcp = tcp
  local ok, err = pcall(function()
    assert(tcp:bind(host, port))
    assert(tcp:listen(128, function(lerr)
      if lerr then return end
      local aok, aerr = pcall(accept, server)
      if not aok then server.on_error(aerr) end
    end))
  end)
  if not ok then
    if not tcp:is_closing() then tcp:close() end
    return nil, err
  end
  server.port = tcp:getsockname().port
  return true
end

-- Create a listening server.  opts: host, port, handler(req, res),
-- on_error(err), next_request_id(), on_response_end(req) (optional).  Returns the server (with .port and
-- .close_all()) or nil, err.
function M.new_server(opts)
  local server = {
    conns = {},
    handler = opts.handler,
    on_error = opts.on_error or function() end,
    next_request_id = opts.next_request_id,
    on_response_end = opts.on_response_end,
  }
  local ok, err = listen(server, opts.host, opts.port)
  if not ok then return nil, err end
  function server.close_all()
    for conn in pairs(server.conns) do conn:close() end
    if server.tcp and not server.tcp:is_closing() then server.tcp:close() end
  end
  return server
end

return M
