-- The nginx transport: HTTP/1.1 over OpenResty's cosockets
-- (ngx.socket.tcp), so a call yields to nginx's event loop while it waits
-- and the worker goes on serving other requests. The same methods as the
-- libcurl transport (see transport/curl.lua); the response head is parsed
-- and server-sent events are decoded by the C core's codecs, the rules the
-- libcurl transport follows too.
--
-- What nginx decides here:
--   * keep-alive: sockets go back to nginx's cosocket pool (setkeepalive,
--     lua_socket_keepalive_timeout, lua_socket_pool_size), one pool per
--     origin and TLS server name;
--   * TLS: verification is always on; the trusted CAs are nginx's
--     lua_ssl_trusted_certificate (and lua_ssl_verify_depth);
--   * DNS: nginx's `resolver` directive (cosockets do not read /etc/hosts).
-- Not here: proxies, and compressed bodies (nothing asks for them).
local core = require("openai.core")

local ngx = rawget(_G, "ngx")

local Ngx = { __name = "openai.transport.ngx" }
Ngx.__index = Ngx

local DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
local MAX_HEAD_BYTES = 256 * 1024    -- the libcurl transport's limit too
local MAX_LINE_BYTES = 8 * 1024      -- a chunk-size or trailer line
local MAX_TRAILER_LINES = 64
local MAX_INTERIM_HEADS = 8          -- 1xx responses before the final one
local READ_SIZE = 64 * 1024
-- How long a stream waits for the rest of its response after [DONE], per
-- read, before it gives up on reusing the connection.
local DRAIN_WAIT_MS = 5

-- settings: max_response_bytes, max_response_values (as openai.new's);
-- explicit: the options given to openai.new that only the libcurl
-- transport can honour. Raises when one is set.
function Ngx.new(settings, explicit)
  if ngx == nil or type(ngx.socket) ~= "table" then
    error("the ngx transport needs nginx's Lua module (OpenResty)")
  end
  if explicit.proxy ~= nil and explicit.proxy ~= "" then
    error("the ngx transport cannot use a proxy (option 'proxy'); pass transport = \"curl\" to use one")
  end
  if explicit.ca_file ~= nil or explicit.ca_path ~= nil then
    error("the ngx transport trusts the CAs of nginx's lua_ssl_trusted_certificate directive, not the options"
      .. " 'ca_file' and 'ca_path'")
  end
  return setmetatable({
    max_bytes = settings.max_response_bytes or DEFAULT_MAX_RESPONSE_BYTES,
    max_values = settings.max_response_values,
    origins = {},
  }, Ngx)
end

---------------------------------------------------------------------------
-- Failures: the kinds of the libcurl transport, with messages of our own.

local function failure(err, what)
  if err == "timeout" then return nil, "timeout", what .. ": timed out" end
  return nil, "connection", what .. ": " .. tostring(err)
end

local function too_large(max_bytes)
  return nil, "too_large", ("response exceeds the limit of %d bytes"):format(max_bytes)
end

-- Cosocket timeouts are milliseconds in a C int: `timeout = math.huge`
-- (no timeout) becomes about 24 days.
local MAX_MS = 2 ^ 31 - 1

local function clamp_ms(ms)
  if ms < 1 then return 1 end
  if ms > MAX_MS then return MAX_MS end
  return math.floor(ms)
end

local function remaining_ms(deadline)
  return clamp_ms((deadline - ngx.now()) * 1000)
end

---------------------------------------------------------------------------
-- Origins: what a URL's scheme and authority mean for a connection.

local function is_ip_literal(host)
  return host:find("^[%d.]+$") ~= nil or host:find(":", 1, true) ~= nil
end

-- The origin of `url` (cached per scheme and authority) and the request
-- target, or nil and a message.
function Ngx:origin(url)
  local prefix, scheme, authority, target = url:match("^(([%a][%w+.-]*)://([^/?#]*))([^#]*)")
  if prefix == nil then return nil, "cannot parse the URL" end
  if target == "" then target = "/" elseif target:sub(1, 1) == "?" then target = "/" .. target end
  local origin = self.origins[prefix]
  if origin then return origin, target end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then return nil, "unsupported URL scheme " .. scheme end
  if authority:find("@", 1, true) then return nil, "the ngx transport does not send credentials from the URL" end
  local host, port = authority:match("^%[([%x:.]+)%]:?(%d*)$")
  local connect_host = host and "[" .. host .. "]"
  if host == nil then
    host, port = authority:match("^([^:]+):?(%d*)$")
    connect_host = host
  end
  if host == nil then return nil, "cannot parse the URL's host" end
  local tls = scheme == "https"
  port = tonumber(port) or (tls and 443 or 80)
  if port < 1 or port > 65535 then return nil, "the URL's port is out of range" end
  -- SNI and certificate names are host names: not for an IP address.
  local server_name = tls and not is_ip_literal(host) and host:lower() or nil
  origin = {
    host = connect_host,
    port = port,
    tls = tls,
    server_name = server_name,
    display = authority,
    host_line = "Host: " .. authority .. "\r\n",
    -- One pool per origin and TLS settings (verification is always on).
    pool = ("openai %s://%s:%d%s"):format(scheme, host:lower(), port, server_name and " sni " .. server_name or ""),
  }
  self.origins[prefix] = origin
  return origin, target
end

---------------------------------------------------------------------------
-- The exchange

local function connect(origin, timeout_ms)
  local sock = ngx.socket.tcp()
  sock:settimeouts(timeout_ms, timeout_ms, timeout_ms)
  local ok, err = sock:connect(origin.host, origin.port, { pool = origin.pool })
  if not ok then return failure(err, "cannot connect to " .. origin.display) end
  if origin.tls and sock:getreusedtimes() == 0 then
    -- false: no session object to keep; server name for SNI and the
    -- certificate check; true: verify against lua_ssl_trusted_certificate.
    local session, herr = sock:sslhandshake(false, origin.server_name, true)
    if not session then
      sock:close()
      return failure(herr, "TLS handshake with " .. origin.display .. " failed")
    end
  end
  return sock
end

-- The bytes of a request, as a list for sock:send (no concatenation).
local function request_pieces(method, origin, target, lines, body)
  local out, n = { method, " ", target, " HTTP/1.1\r\n", origin.host_line }, 5
  for i = 1, #lines do
    local line = lines[i]
    -- "Name:" alone removes a header the transport would add: this one
    -- adds none but Host and Content-Length (which the client refuses).
    if line:byte(-1) ~= 58 then
      out[n + 1], out[n + 2] = line, "\r\n"
      n = n + 2
    end
  end
  if body ~= nil then
    out[n + 1] = ("Content-Length: %d\r\n\r\n"):format(#body)
    out[n + 2] = body
  elseif method == "POST" or method == "PUT" or method == "PATCH" then
    out[n + 1] = "Content-Length: 0\r\n\r\n"
  else
    out[n + 1] = "\r\n"
  end
  return out
end

-- Reads up to and without `delimiter`, at most `limit` bytes. Returns the
-- text, or nil, the socket's error (or "too_large") and how many bytes had
-- arrived.
local function read_until(sock, delimiter, limit)
  local reader = sock:receiveuntil(delimiter)
  local parts, size = {}, 0
  while true do
    local data, err, partial = reader(limit - size + 1)
    if data == nil then
      if err then return nil, err, size + #(partial or "") end
      return table.concat(parts)
    end
    size = size + #data
    if size > limit then return nil, "too_large", size end
    parts[#parts + 1] = data
  end
end

-- The final response's status and headers, after any 1xx ones.
local function read_head(sock)
  for _ = 1, MAX_INTERIM_HEADS do
    local head, err, arrived = read_until(sock, "\r\n\r\n", MAX_HEAD_BYTES)
    if head == nil then
      if err == "too_large" then return nil, "too_large", "response headers exceed the limit" end
      if err == "closed" and arrived == 0 then return nil, "connection", "the server closed the connection", true end
      return failure(err, "the response ended before its headers were complete")
    end
    local status, headers = core.http_head(head .. "\r\n")
    if status == nil then return nil, "connection", "malformed response head: " .. headers end
    if status >= 200 or status == 101 then return status, headers end
  end
  return nil, "connection", "too many interim (1xx) responses"
end

-- How the body is delimited (HTTP/1.1's message framing): "none",
-- "chunked", "length" (with its length) or "close"; nil and a message for
-- a framing that cannot be trusted.
local function framing(method, status, headers)
  if method == "HEAD" or status == 204 or status == 304 then return "none" end
  local coding = headers["transfer-encoding"]
  if coding ~= nil then
    if coding:lower():find("chunked%s*$") then return "chunked" end
    return "close"
  end
  local length_text = headers["content-length"]
  if length_text == nil then return "close" end
  local length
  for value in (length_text .. ","):gmatch("%s*([^,]-)%s*,") do
    if not value:find("^%d+$") or #value > 15 or (length and tonumber(value) ~= length) then
      return nil, "the response has an invalid Content-Length"
    end
    length = tonumber(value)
  end
  if length == nil then return nil, "the response has an invalid Content-Length" end
  return "length", length
end

-- A response body read piece by piece as it arrives.
local Body = {}
Body.__index = Body

local function new_body(sock, mode, length, keep)
  return setmetatable({
    sock = sock, mode = mode, left = length or 0,
    done = mode == "none" or (mode == "length" and length == 0),
    reusable = keep and (mode == "none" or (mode == "length" and length == 0)),
    keep = keep,
  }, Body)
end

local function read_line(sock)
  local line, err = read_until(sock, "\r\n", MAX_LINE_BYTES)
  if line == nil then
    if err == "too_large" then return nil, "connection", "malformed chunked body: a line is too long" end
    return failure(err, "the response ended before its body was complete")
  end
  return line
end

-- The size of the next chunk; at the last one, the trailers are skipped.
function Body:next_chunk()
  local sock = self.sock
  local line, kind, message = read_line(sock)
  if line == nil then return nil, kind, message end
  local hex = line:match("^(%x+)[ \t]*;") or line:match("^(%x+)[ \t]*$")
  if hex == nil or #hex > 12 then return nil, "connection", "malformed chunked body: bad chunk size" end
  local size = tonumber(hex, 16)
  if size == 0 then
    for _ = 1, MAX_TRAILER_LINES do
      line, kind, message = read_line(sock)
      if line == nil then return nil, kind, message end
      if line == "" then return 0 end
    end
    return nil, "connection", "malformed chunked body: too many trailer lines"
  end
  return size
end

-- Returns the next piece of the body (what has arrived, at most READ_SIZE
-- bytes), nil at its end, or nil, kind, message.
function Body:piece()
  if self.done then return nil end
  local sock = self.sock
  if self.mode == "close" then
    local data, err = sock:receiveany(READ_SIZE)
    if data == nil then
      if err == "closed" then
        self.done = true
        return nil
      end
      return failure(err, "reading the response body")
    end
    return data
  end
  if self.left == 0 then -- chunked: a new chunk
    local size, kind, message = self:next_chunk()
    if size == nil then return nil, kind, message end
    if size == 0 then
      self.done, self.reusable = true, self.keep
      return nil
    end
    self.left = size
  end
  local data, err = sock:receiveany(self.left < READ_SIZE and self.left or READ_SIZE)
  if data == nil then return failure(err, "the response ended before its body was complete") end
  self.left = self.left - #data
  if self.left == 0 then
    if self.mode == "length" then
      self.done, self.reusable = true, self.keep
    else
      local crlf, cerr = sock:receive(2)
      if crlf ~= "\r\n" then
        if crlf == nil then return failure(cerr, "the response ended before its body was complete") end
        return nil, "connection", "malformed chunked body: a chunk does not end in CRLF"
      end
    end
  end
  return data
end

-- Hands the socket back to nginx's pool when the response was read to its
-- end and the server allows reuse, else closes it. Idempotent.
function Body:release()
  local sock = self.sock
  if sock == nil then return end
  self.sock = nil
  if self.done and self.reusable then
    sock:setkeepalive()
  else
    sock:close()
  end
end

-- Reads the whole body, at most max_bytes. Returns the text, or nil,
-- kind, message.
function Body:read_all(max_bytes)
  if self.mode == "length" and self.left > max_bytes then return too_large(max_bytes) end
  local parts, size = {}, 0
  while true do
    local data, kind, message = self:piece()
    if data == nil then
      if kind ~= nil then return nil, kind, message end
      return table.concat(parts)
    end
    size = size + #data
    if size > max_bytes then return too_large(max_bytes) end
    parts[#parts + 1] = data
  end
end

-- Whether the server lets the connection be reused after this response.
local function keeps_alive(headers)
  local connection = headers["connection"]
  return connection == nil or not connection:lower():find("close", 1, true)
end

-- Sends the request and reads the final response's head. Returns sock,
-- status, headers, or nil, kind, message. A pooled connection the server
-- closed meanwhile is replaced once, as libcurl does.
function Ngx:open(method, url, lines, body, timeout, deadline)
  local origin, target = self:origin(url)
  if origin == nil then return nil, "config", target end
  local pieces = request_pieces(method, origin, target, lines, body)
  for _ = 1, 2 do
    local sock, kind, message = connect(origin, remaining_ms(deadline))
    if sock == nil then return nil, kind, message end
    local reused = sock:getreusedtimes() > 0
    local sent, err = sock:send(pieces)
    local status, headers, stale
    if sent == nil then
      status, headers, message, stale = failure(err, "sending the request")
      stale = err == "closed" or err == "broken pipe"
    else
      sock:settimeouts(timeout, timeout, remaining_ms(deadline))
      status, headers, message, stale = read_head(sock)
    end
    if status ~= nil then return sock, status, headers end
    sock:close()
    if not (reused and stale) then return nil, headers, message end
  end
  return nil, "connection", "the server closed the connection"
end

local function decode(text, max_values)
  if text == "" then return "" end
  local value, err = core.json_decode(text, nil, max_values)
  if value == nil and err ~= nil then return text, err end
  return value
end

-- Sends the request and reads the head: returns status, headers and a
-- reader of the body (with the attempt's timeout in ms and deadline), or
-- nil, kind, message.
function Ngx:exchange(method, url, lines, body, timeout)
  local timeout_ms = clamp_ms(timeout * 1000)
  local deadline = ngx.now() + timeout
  local sock, status, headers = self:open(method, url, lines, body, timeout_ms, deadline)
  if sock == nil then return nil, status, headers end
  local mode, length = framing(method, status, headers)
  if mode == nil then
    sock:close()
    return nil, "connection", length
  end
  return status, headers, new_body(sock, mode, length, keeps_alive(headers)), timeout_ms, deadline
end

-- The whole body, decoded: status, headers, value[, decode error]; with
-- form "raw", as it came.
function Ngx:finish(status, headers, reader, timeout_ms, deadline, form)
  reader.sock:settimeouts(timeout_ms, timeout_ms, remaining_ms(deadline))
  local text, kind, message = reader:read_all(self.max_bytes)
  reader:release()
  if text == nil then return nil, kind, message end
  if form == "raw" then return status, headers, text end
  return status, headers, decode(text, self.max_values)
end

function Ngx:request(method, url, lines, body, timeout, form)
  local status, headers, reader, timeout_ms, deadline = self:exchange(method, url, lines, body, timeout)
  if status == nil then return nil, headers, reader end
  return self:finish(status, headers, reader, timeout_ms, deadline, form)
end

function Ngx:sleep(seconds)
  ngx.sleep(seconds)
end

function Ngx:close() end -- sockets belong to the requests that opened them

---------------------------------------------------------------------------
-- Streams: read(wait) and close(), as openai.core's Stream.

local Reader = { __name = "openai.transport.ngx.Reader" }
Reader.__index = Reader

function Ngx:stream(method, url, lines, body, timeout)
  local status, headers, body_reader, timeout_ms, deadline = self:exchange(method, url, lines, body, timeout)
  if status == nil then return nil, headers, body_reader end
  if status < 200 or status >= 300 then return self:finish(status, headers, body_reader, timeout_ms, deadline) end
  return status, headers, setmetatable({
    body = body_reader,
    decoder = core.sse_decoder(self.max_bytes),
    timeout_ms = timeout_ms,
    ended = false,   -- the body has ended and the decoder is flushed
    error = nil,     -- kind and message of a failure, once failed
  }, Reader)
end

-- A failure ends the stream; read() repeats it.
local function fail(reader, kind, message)
  reader.error = { kind, message }
  reader.decoder:close()
  reader.body:release()
  return nil, kind, message
end

-- read([wait]) -> event|nil, data | nil (the end) | nil, kind, message |
-- nil, "pending" (wait == false and nothing has arrived).
function Reader:read(wait)
  if self.error then return nil, self.error[1], self.error[2] end
  local decoder, body = self.decoder, self.body
  local waiting = wait == nil or wait
  while true do
    local data, name = decoder:next()
    if data ~= nil then return name, data end
    if self.ended then
      body:release()
      return nil
    end
    if body.sock == nil then return nil, "closed", "the stream was closed" end
    body.sock:settimeouts(self.timeout_ms, self.timeout_ms, waiting and self.timeout_ms or DRAIN_WAIT_MS)
    local piece, kind, message = body:piece()
    if piece == nil then
      if kind == "timeout" and not waiting then return nil, "pending" end
      if kind ~= nil then return fail(self, kind, message) end
      local ok, fkind, fmessage = decoder:finish()
      if not ok then return fail(self, fkind, fmessage) end
      self.ended = true
    else
      local ok, fkind, fmessage = decoder:feed(piece)
      if not ok then return fail(self, fkind, fmessage) end
    end
  end
end

function Reader:close()
  if self.error == nil and not self.ended then self.error = { "closed", "the stream was closed" } end
  self.decoder:close()
  self.body:release()
end

return Ngx
