-- A wrk script (wrk -s ... URL -- LEAD_MS CONNECTIONS): the first request
-- of each connection waits LEAD_MS after connecting. Both loads connect
-- while the worker is idle, so every connection is accepted before the
-- first API call blocks it: a blocked worker accepts one connection per
-- turn of its event loop, and a row would otherwise measure how late the
-- trivial connections get accepted, not how a request on an open
-- connection fares. Nothing is answered during the lead, so nothing of it
-- enters the figures.
local lead, first = 0, 0

function init(args)
  lead = tonumber(args[1]) or 0
  first = tonumber(args[2]) or 0
end

-- wrk asks before every request; the first CONNECTIONS asks are each
-- connection's first request (wrk -t1: one Lua state for all).
function delay()
  if first > 0 then
    first = first - 1
    return lead
  end
  return 0
end
