-- The libcurl transport: a thin face over openai.core's Connection (one
-- multi handle per client: its connection cache, keep-alive and TLS
-- sessions). It blocks the calling thread while it waits; the default
-- outside nginx, and in nginx's init phase.
--
-- Every transport has these methods (see transport/ngx.lua for the other):
--   t:request(method, url, lines, body, timeout)
--       -> status, headers, object, decode_error|nil
--       -> status, false, object, request_id|nil  (a 2xx JSON object, when
--                                                  the transport can skip
--                                                  building the headers)
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
local Done = {}
Done.__index = Done
function Done:ready() return self.pending:done() end

function Curl:request(method, url, lines, body, timeout)
  if tasks.current() == nil then
    return self.connection:request(method, url, lines, body, timeout, true, true)
  end
  local pending = tasks.hold(self.connection:start(method, url, lines, body, timeout))
  tasks.wait(setmetatable({ pending = pending }, Done))
  return pending:result()
end

-- A stream's reader: the C core's Stream, read by waiting (blocking) or,
-- inside a task, by yielding until an event is there.
local Reader = {}
Reader.__index = Reader

-- The wait for the next event: ready once a look at the network gave
-- something other than "pending" (kept for read()).
local Next = {}
Next.__index = Next
function Next:ready()
  local result = { n = 0 }
  result.n, result[1], result[2], result[3] = 3, self.raw:read(false)
  if result[1] == nil and result[2] == "pending" then return false end
  self.result = result
  return true
end

function Reader:read(wait)
  local raw = self.raw
  if wait == false or tasks.current() == nil then return raw:read(wait) end
  local next_event = setmetatable({ raw = raw }, Next)
  if not next_event:ready() then tasks.wait(next_event) end
  local r = next_event.result
  return r[1], r[2], r[3]
end

function Reader:close()
  self.raw:close()
end

-- The stream's head: ready once the C core has it (or the whole answer
-- of a status other than 2xx, or a failure).
local Head = {}
Head.__index = Head
function Head:ready()
  local result = { self.raw:head() }
  if result[1] == nil and result[2] == "pending" then return false end
  self.result = result
  return true
end

function Curl:stream(method, url, lines, body, timeout)
  local status, headers, raw, detail
  if tasks.current() == nil then
    status, headers, raw, detail = self.connection:stream(method, url, lines, body, timeout)
  else
    local head = setmetatable({ raw = tasks.hold(self.connection:stream_start(method, url, lines, body, timeout)) }, Head)
    if not head:ready() then tasks.wait(head) end
    status, headers, raw, detail = head.result[1], head.result[2], head.result[3], head.result[4]
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
