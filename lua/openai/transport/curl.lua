-- The libcurl transport: a thin face over openai.core's Connection (one
-- multi handle per client: its connection cache, keep-alive and TLS
-- sessions). It blocks the calling thread while it waits; the default
-- outside nginx, and in nginx's init phase.
--
-- Every transport has these methods (see transport/ngx.lua for the other):
--   t:request(method, url, lines, body, timeout, form)
--       -> status, headers, object, decode_error|nil
--       -> status, headers, text  (form "raw": the body as it came)
--       -> status, false, object, request_id|nil  (a 2xx JSON object, when
--                                                  the transport can skip
--                                                  building the headers:
--                                                  form nil, not "headers")
--       -> nil, kind, message   kind: "timeout", "connection", "too_large",
--                               "config", "fd_limit", "closed"
--   t:stream(method, url, lines, body, timeout)
--       -> status, headers, reader  (2xx; reader:read(wait), reader:close())
--       -> status, headers, body, decode_error|nil  (any other status)
--       -> nil, kind, message
--   t:sleep(seconds)   the wait between retries
--   t:close()          idempotent
-- `lines` is a list of "Name: value" header lines ("Name:" removes a header
-- the transport would add), never changed once passed; `body` a string or
-- nil; `timeout` seconds per attempt (a stream: until its head, then each
-- read's silence).
local core = require("openai.core")
local tasks = require("openai.tasks")

local Curl = { __name = "openai.transport.curl" }
Curl.__index = Curl

-- Raises on settings libcurl refuses (the proxy URL is never echoed).
function Curl.new(settings)
  return setmetatable({ connection = core.connection(settings) }, Curl)
end

-- Inside a task a call starts its transfer on the connection's loop and
-- yields until it is done (see openai.tasks); outside, it blocks.
function Curl:request(method, url, lines, body, timeout, form)
  local decode, request_id_only = form ~= "raw", form == nil
  if tasks.current() == nil then
    return self.connection:request(method, url, lines, body, timeout, decode, request_id_only)
  end
  local pending, kind, message = self.connection:start(method, url, lines, body, timeout, decode, request_id_only)
  if pending == nil then return nil, kind, message end
  tasks.wait(tasks.hold(pending))
  return pending:result()
end

-- A stream's reader: the C core's Stream, read by waiting (blocking) or,
-- inside a task, by yielding until an event is there. The reader is its
-- own waitable: raw:ready() only looks (the Lua state's loop does the
-- network), and the loop lists the stream by its wake key once it moved
-- on, so a poll asks only the streams that did.
local Reader = {}
Reader.__index = Reader

function Reader:ready()
  return self.raw:ready()
end

function Reader:wake_key()
  return self.raw:wake_key()
end

function Reader:read(wait)
  local raw = self.raw
  if wait == false or tasks.current() == nil then return raw:read(wait) end
  while true do
    tasks.wait(self) -- at once when an event is there
    local event, data, detail = raw:read(false)
    if event ~= nil or data ~= "pending" then return event, data, detail end
  end
end

function Reader:close()
  self.raw:close()
end

function Curl:stream(method, url, lines, body, timeout)
  local status, headers, raw, detail
  if tasks.current() == nil then
    status, headers, raw, detail = self.connection:stream(method, url, lines, body, timeout)
  else
    local started, kind, message = self.connection:stream_start(method, url, lines, body, timeout)
    if started == nil then return nil, kind, message end
    tasks.hold(started)
    repeat
      tasks.wait(started)
      status, headers, raw, detail = started:head()
    until status ~= nil or headers ~= "pending"
  end
  if status ~= nil and status >= 200 and status < 300 then raw = setmetatable({ raw = raw }, Reader) end
  return status, headers, raw, detail
end

function Curl:sleep(seconds)
  return tasks.sleep(seconds)
end

function Curl:close()
  self.connection:close()
end

return Curl
