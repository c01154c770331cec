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

local Curl = { __name = "openai.transport.curl" }
Curl.__index = Curl

-- Raises on settings libcurl refuses (the proxy URL is never echoed).
function Curl.new(settings)
  return setmetatable({ connection = core.connection(settings) }, Curl)
end

function Curl:request(method, url, lines, body, timeout)
  return self.connection:request(method, url, lines, body, timeout, true, true)
end

function Curl:stream(method, url, lines, body, timeout)
  return self.connection:stream(method, url, lines, body, timeout)
end

Curl.sleep = function(_, seconds) return core.sleep(seconds) end

function Curl:close()
  self.connection:close()
end

return Curl
