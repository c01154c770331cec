-- Prints `make bench-concurrency` as Markdown tables, from the lines
-- tools/bench-concurrency.sh wrote, one per client run:
--   retrieve <client> <round> <calls> <wall s> <client CPU s> <peak RSS kB>
--     <nginx CPU ns> <nginx accepts before> <requests before> <accepts after> <requests after>
--   streams <client> <round> <streams> <chunks> <wall s> <client CPU s> <RSS before kB>
--     <peak RSS kB> [<Lua heap before kB> <Lua heap with all open kB> <RSS with all open kB>]
--     <nginx CPU ns> <accepts before> <requests before> <accepts after> <requests after>
--     <open> <most open at once> <ended> <events sent>
-- (the nginx counters come from its stub_status page, whose own request
-- counts as one connection and one request; the stream counters from
-- bench/sse_server.lua, reset before each run).
--   lua5.4 bench/concurrency_report.lua RESULTS DATE MACHINE VERSIONS COMMIT CPU CLIENT_CPU
--     SECONDS IN_FLIGHT STREAMS CHUNKS INTERVAL
package.path = "./?.lua;" .. package.path
local numbers = require("bench.stats")
local format, concat = string.format, table.concat
local median, count = numbers.median, numbers.count

local path, date, machine, versions, commit, cpu, client_cpu, seconds, in_flight, streams, chunks, interval =
  table.unpack(arg, 1, 12)

local RETRIEVE_CLIENTS = {
  { key = "multi", label = "curl-multi: libcurl multi + epoll, C, no decode" },
  { key = "multi+yajl", label = "curl-multi + yajl parse, C" },
  { key = "multi+headers", label = "curl-multi sending this client's 11 request headers, C, no decode" },
  { key = "openai", label = "**openai**: tasks, `retrieve` (Lua 5.4)" },
  { key = "openai-node", label = "openai-node: async workers, `retrieve`" },
  { key = "node-fetch", label = "Node `fetch` + `response.json()`, no SDK" },
}
local STREAM_CLIENTS = {
  { key = "openai", label = "**openai**: tasks, `create{stream = true}` + `stream:next()` (Lua 5.4)" },
  { key = "multi", label = "curl-multi: libcurl multi + epoll, C, events counted, not parsed" },
}
local GOALS = { multi = 0.8, ["openai-node"] = 10 }

local function kb(value) return format("%.1f MB", value / 1024) end

-- Collects the runs: runs[client] = { field = { value per run }, by_round = { [round] = rate } }.
local retrieves, stream_runs, rounds = {}, {}, 0
local function add(runs, client, round, rate, values)
  local r = runs[client] or { by_round = {} }
  runs[client] = r
  r.by_round[round] = rate
  for field, value in pairs(values) do
    r[field] = r[field] or {}
    r[field][#r[field] + 1] = value
  end
end

-- The median over the rounds of a's rate / b's rate in the same round:
-- steadier than the ratio of medians when the machine's load drifts.
local function paired(runs, a, b)
  local ratios = {}
  for round, rate in pairs(runs[a] and runs[a].by_round or {}) do
    local other = runs[b] and runs[b].by_round[round]
    if other then ratios[#ratios + 1] = rate / other end
  end
  return median(ratios)
end
for _, f in ipairs(numbers.records(path)) do
  local n = {}
  for i = 4, #f do n[i] = tonumber(f[i]) end
  if f[1] == "retrieve" and #f == 12 then
    local requests = n[12] - n[10] - 1
    add(retrieves, f[2], tonumber(f[3]), n[4] / n[5], { ops = n[4] / n[5], cpu_us = n[6] / n[4] * 1e6, rss = n[7],
      nginx_us = n[8] / 1000 / requests, nginx_busy = n[8] / 1e9 / n[5], connections = n[11] - n[9] - 1 })
  elseif f[1] == "streams" and (#f == 18 or #f == 21) then
    local lua = #f == 21
    local at = lua and 13 or 10 -- nginx's CPU, then its counters and the stream counters
    local rss_open = lua and n[12] or nil
    add(stream_runs, f[2], tonumber(f[3]), n[4] / n[6], { streams = n[4] / n[6], chunks = n[5] / n[6], wall = n[6],
      cpu_us = n[7] / n[5] * 1e6, rss_before = n[8], rss = n[9],
      per_stream = (lua and rss_open - n[8] or n[9] - n[8]) / n[4],
      heap = lua and (n[11] - n[10]) / n[4] or nil, nginx_busy = n[at] / 1e9 / n[6],
      at_once = n[at + 6], ended = n[at + 7], expected = n[4] * (tonumber(chunks) + 2) })
  end
  rounds = math.max(rounds, tonumber(f[3]) or 0)
end

local function medians(runs)
  local out = {}
  for client, r in pairs(runs) do
    local m = {}
    for field, list in pairs(r) do
      if field ~= "by_round" then m[field] = median(list) end
    end
    m.lo, m.hi = numbers.range(r.ops or r.streams)
    out[client] = m
  end
  return out
end

print(format("Many calls from one thread against a local nginx, %s, commit %s; %s.", date, commit, machine))
print(format("%s. nginx on CPU %s, each client on CPU %s; medians of %d interleaved rounds (ratios: medians of"
  .. " the ratios within each round).",
  versions, cpu, client_cpu, rounds))

-- 1. Retrieves in flight.
local r = medians(retrieves)
local anchor, node = r.multi and r.multi.ops, r["openai-node"] and r["openai-node"].ops
print()
print(format("**%s retrieves in flight** (golden `chatcmpl-abc123`, 766 B; %s s per client and round)", in_flight,
  seconds))
print()
print("| client | calls/s | min–max | × curl-multi | × openai-node | client CPU µs/call | nginx CPU µs/req | connections/run | peak RSS |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
-- The ratios: medians of the per-round ratios.
for _, client in ipairs(RETRIEVE_CLIENTS) do
  local s = r[client.key]
  if s then
    local bold = client.key == "openai" and "**" or ""
    print(format("| %s | %s%s%s | %s–%s | %s | %s | %.1f | %.1f | %.0f | %s |", client.label, bold, count(s.ops), bold,
      count(s.lo), count(s.hi), anchor and format("%.2f×", paired(retrieves, client.key, "multi")) or "–",
      node and format("%.2f×", paired(retrieves, client.key, "openai-node")) or "–", s.cpu_us, s.nginx_us, s.connections, kb(s.rss)))
  end
end
if r.openai then
  local parts = {}
  for _, key in ipairs { "multi", "openai-node" } do
    local s = r[key]
    if s then
      local ratio = paired(retrieves, "openai", key)
      parts[#parts + 1] = format("%.2f× %s (goal ≥ %g×: %s; by client CPU per call %.2f×)", ratio, key, GOALS[key],
        ratio >= GOALS[key] and "met" or "not met", s.cpu_us / r.openai.cpu_us)
    end
  end
  if r["multi+headers"] then
    parts[#parts + 1] = format("%.2f× curl-multi sending the same request headers (by client CPU per call %.2f×)",
      paired(retrieves, "openai", "multi+headers"), r["multi+headers"].cpu_us / r.openai.cpu_us)
  end
  print()
  print("openai: " .. concat(parts, "; ") .. ".")
end
if r.multi then
  print()
  print(format("Server check: nginx was busy %.0f%% of its CPU during curl-multi's runs (%.0f%% during openai's).",
    r.multi.nginx_busy * 100, (r.openai and r.openai.nginx_busy or 0) * 100))
end

-- 2. Streams at once.
local s = medians(stream_runs)
print()
print(format("**%s streams open at once** (each: %s content chunks + a role and a finish chunk, %s s apart, then [DONE];"
  .. " the server's pacing alone takes %.2f s)", streams, chunks, interval, (tonumber(chunks) + 2) * tonumber(interval)))
print()
print("| client | streams/s | chunks/s | × curl-multi | batch wall s | open at once (server) | client CPU µs/chunk | peak RSS | RSS/stream | Lua heap/stream |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
for _, client in ipairs(STREAM_CLIENTS) do
  local m = s[client.key]
  if m then
    local bold = client.key == "openai" and "**" or ""
    print(format("| %s | %s%s%s | %s | %s | %.2f | %.0f | %.1f | %s | %.1f kB | %s |", client.label, bold,
      count(m.streams), bold, count(m.chunks), s.multi and format("%.2f×", paired(stream_runs, client.key, "multi")) or "–",
      m.wall, m.at_once, m.cpu_us, kb(m.rss), m.per_stream, m.heap and format("%.1f kB", m.heap) or "–"))
  end
end
local notes = {}
for _, client in ipairs(STREAM_CLIENTS) do
  local m = s[client.key]
  if m then
    notes[#notes + 1] = format("%s: RSS %s before opening, streams ended on the server %.0f of %s, nginx busy %.0f%%",
      client.key, kb(m.rss_before), m.ended, streams, m.nginx_busy * 100)
  end
end
if #notes > 0 then
  print()
  print("RSS/stream: (RSS with all streams open − RSS before opening any) / streams (curl-multi: peak RSS − RSS"
    .. " before); Lua heap/stream: the same with collectgarbage(\"count\"). " .. concat(notes, "; ") .. ".")
end
