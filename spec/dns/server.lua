-- A DNS responder for the specs: every A query for a name under .test is
-- answered 127.0.0.1, anything else NXDOMAIN. On 127.0.0.1 only, UDP.
-- Lets nginx's `resolver` (cosockets do not read /etc/hosts) reach local
-- servers by host name, so TLS host-name checks and SNI can be tested.
--
--   lua5.4 spec/dns/server.lua PORT PARENT_PID
-- It ends when its parent (the spec run) is gone, or when killed by PID.
local socket = require("socket")

local port, parent = tonumber(arg[1]), tonumber(arg[2])
local udp = assert(socket.udp())
assert(udp:setsockname("127.0.0.1", port))
udp:settimeout(0.5)

local function u16(text, at)
  return text:byte(at) * 256 + text:byte(at + 1)
end

-- The question's name (as labels) and where the question ends.
local function question(packet)
  local labels, at = {}, 13
  while true do
    local length = packet:byte(at)
    if length == nil or length > 63 then return nil end
    if length == 0 then break end
    labels[#labels + 1] = packet:sub(at + 1, at + length)
    at = at + length + 1
  end
  return table.concat(labels, "."):lower(), at + 4, u16(packet, at + 1)
end

local function answer(packet)
  if #packet < 17 then return nil end
  local name, ends, qtype = question(packet)
  if name == nil then return nil end
  local found = qtype == 1 and name:find("%.test$") ~= nil
  local flags = found and "\x81\x80" or "\x81\x83" -- a response, recursion available; NXDOMAIN
  local head = packet:sub(1, 2) .. flags .. "\0\1" .. (found and "\0\1" or "\0\0") .. "\0\0\0\0"
  local reply = head .. packet:sub(13, ends)
  if found then
    -- a pointer to the question's name, A, IN, TTL 60, 4 bytes: 127.0.0.1
    reply = reply .. "\xc0\x0c\0\1\0\1\0\0\0\60\0\4\127\0\0\1"
  end
  return reply
end

while true do
  local packet, ip, from_port = udp:receivefrom()
  if packet then
    local reply = answer(packet)
    if reply then udp:sendto(reply, ip, from_port) end
  elseif parent then
    local alive = io.open("/proc/" .. parent .. "/stat")
    if alive == nil then break end
    alive:close()
  end
end
