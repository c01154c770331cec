-- Prints the HTTP part of `make bench` as a Markdown table, from the lines
-- tools/bench.sh wrote, one per client run:
--   <client> <body> <round> <calls> <wall s> <client CPU s> <nginx CPU ns>
--   <nginx accepts before> <requests before> <accepts after> <requests after>
-- (the nginx counters come from its stub_status page, whose own request
-- counts as one connection and one request).
--   lua5.4 bench/report.lua RESULTS DATE MACHINE VERSIONS COMMIT CPU SECONDS
package.path = "./?.lua;" .. package.path
local numbers = require("bench.stats")
local format, concat = string.format, table.concat
local median, count = numbers.median, numbers.count

local path, date, machine, versions, commit, cpu, seconds = table.unpack(arg, 1, 7)

local CLIENTS = {
  { key = "floor", label = "floor: libcurl, C, no decode" },
  { key = "floor+yajl", label = "libcurl + yajl parse, C" },
  { key = "floor+headers", label = "floor sending the client's request headers, C" },
  { key = "openai", label = "**openai** `retrieve` (Lua 5.4)" },
  { key = "socket.http", label = "socket.http + lua-cjson (Lua 5.4)", cjson = true },
  { key = "lua-curl", label = "lua-curl + lua-cjson (Lua 5.1)", cjson = true },
  { key = "lua-curl+headers", label = "lua-curl + lua-cjson sending the client's request headers (Lua 5.1)", cjson = true },
}
local BODIES = {
  { key = "small", label = "golden `chatcmpl-abc123`, 766 B", goal = "floor" },
  { key = "large", label = "large completion with logprobs, ~205 KB", goal = "cjson" },
}

-- runs[client][body] = { ops = {...}, cpu_us = {...}, nginx_us = {...}, connections = {...} }
local runs, rounds = {}, 0
for _, f in ipairs(numbers.records(path)) do
  if #f == 11 then
    local client, body = f[1], f[2]
    local calls, wall, cpu_s, nginx_ns = tonumber(f[4]), tonumber(f[5]), tonumber(f[6]), tonumber(f[7])
    local accepts = tonumber(f[10]) - tonumber(f[8]) - 1
    local requests = tonumber(f[11]) - tonumber(f[9]) - 1
    runs[client] = runs[client] or {}
    local r = runs[client][body] or { ops = {}, cpu_us = {}, nginx_us = {}, connections = {} }
    runs[client][body] = r
    r.ops[#r.ops + 1] = calls / wall
    r.cpu_us[#r.cpu_us + 1] = cpu_s / calls * 1e6
    r.nginx_us[#r.nginx_us + 1] = nginx_ns / 1000 / requests
    r.connections[#r.connections + 1] = accepts
    r.requests = requests
    rounds = math.max(rounds, tonumber(f[3]))
  end
end

print(format("Retrieves per second over HTTP from a local nginx, %s, commit %s; %s.", date, commit, machine))
print(format("%s. nginx and each client on CPU %s; medians of %d interleaved rounds of %s s per client and body.",
  versions, cpu, rounds, seconds))

-- The ratio that counts, from a table of rates: × floor for the small
-- body, × the best lua-cjson client for the large one.
local function references(stats, field)
  local floor = stats.floor and stats.floor[field]
  local best, best_name
  for _, client in ipairs(CLIENTS) do
    local s = stats[client.key]
    if client.cjson and s and (best == nil or s[field] > best) then best, best_name = s[field], client.key end
  end
  return floor, best, best_name
end

-- The fastest client other than the floor and the floor + yajl (which is
-- the floor plus a parse, not a client).
local function fastest_lua(stats, field)
  local fastest, name = 0, nil
  for _, client in ipairs(CLIENTS) do
    local s = stats[client.key]
    if not client.key:match("^floor") and s and s[field] > fastest then fastest, name = s[field], client.key end
  end
  return fastest, name
end

local verdicts = {}
for _, body in ipairs(BODIES) do
  local stats = {}
  for _, client in ipairs(CLIENTS) do
    local r = runs[client.key] and runs[client.key][body.key]
    if r and #r.ops > 0 then
      local lo, hi = numbers.range(r.ops)
      local cpu_rates = {}
      for i = 1, #r.ops do cpu_rates[i] = 1e6 / (r.cpu_us[i] + r.nginx_us[i]) end
      stats[client.key] = {
        ops = median(r.ops), lo = lo, hi = hi, cpu_us = median(r.cpu_us), nginx_us = median(r.nginx_us),
        cpu_rate = median(cpu_rates), connections = median(r.connections), runs = #r.ops,
      }
    end
  end
  local floor, best_cjson, best_name = references(stats, "ops")
  print()
  print(format("**%s** (the ratio that counts: %s)", body.label,
    body.goal == "floor" and "× floor" or "× the best lua-cjson client"))
  print()
  print("| client | calls/s | min–max | × floor | × best lua-cjson | client CPU µs/call | nginx CPU µs/req | connections/run |")
  print("|---|--:|--:|--:|--:|--:|--:|--:|")
  for _, client in ipairs(CLIENTS) do
    local s = stats[client.key]
    if s then
      local to_floor = floor and format("%.2f×", s.ops / floor) or "–"
      local to_cjson = best_cjson and format("%.2f×", s.ops / best_cjson) or "–"
      if body.goal == "floor" then to_floor = "**" .. to_floor .. "**" else to_cjson = "**" .. to_cjson .. "**" end
      print(format("| %s | %s | %s–%s | %s | %s | %.1f | %.1f | %.0f |", client.label, count(s.ops), count(s.lo),
        count(s.hi), to_floor, to_cjson, s.cpu_us, s.nginx_us, s.connections))
    end
  end
  -- The same ratios by CPU time: client + nginx CPU per call, which other
  -- work on the same CPU does not inflate (it only delays).
  local cpu_floor, cpu_best, cpu_best_name = references(stats, "cpu_rate")
  local reference = body.goal == "floor" and cpu_floor or cpu_best
  if reference then
    local parts = {}
    for _, client in ipairs(CLIENTS) do
      local s = stats[client.key]
      if s then parts[#parts + 1] = format("%s %.2f×", client.key, s.cpu_rate / reference) end
    end
    print()
    print(format("By CPU time (1 / (client + nginx CPU per call), unaffected by other load on the CPU), %s: %s.",
      body.goal == "floor" and format("× floor (%s/s)", count(cpu_floor))
        or format("× %s (%s/s)", cpu_best_name, count(cpu_best)), concat(parts, ", ")))
  end
  -- The client sends more request headers than the bare anchors: the same
  -- anchors sending the same headers compare like with like.
  local o, fh, lh = stats.openai, stats["floor+headers"], stats["lua-curl+headers"]
  if o and (fh or lh) then
    local parts = {}
    if fh then parts[#parts + 1] = format("%.2f× the floor sending them (%.2f× by CPU time)", o.ops / fh.ops,
      o.cpu_rate / fh.cpu_rate) end
    if lh then parts[#parts + 1] = format("%.2f× lua-curl + lua-cjson sending them (%.2f× by CPU time)",
      o.ops / lh.ops, o.cpu_rate / lh.cpu_rate) end
    print()
    print("With the client's request headers on both sides, openai is " .. concat(parts, " and ") .. ".")
  end
  -- The server must not be the bottleneck: the floor clearly ahead of every
  -- Lua client, and nginx's own CPU per request well below a call's.
  if floor then
    local fastest, fastest_name = fastest_lua(stats, "ops")
    local cpu_fastest, cpu_fastest_name = fastest_lua(stats, "cpu_rate")
    if fastest_name then
      local lead, cpu_lead = floor / fastest, cpu_floor / cpu_fastest
      verdicts[#verdicts + 1] = format("%s body: the floor is %.2f× the fastest Lua client (%s) by wall time"
        .. " and %.2f× (%s) by CPU time; nginx spends %.1f µs CPU a request (%s/s at most)%s",
        body.key, lead, fastest_name, cpu_lead, cpu_fastest_name, stats.floor.nginx_us, count(1e6 / stats.floor.nginx_us),
        cpu_lead < 1.1 and " — WARNING: the floor is not clearly ahead"
          or lead < 1.1 and " — the floor is not clearly ahead by wall time: other load on the CPU, rerun"
          or "")
    end
  end
end
print()
print("Server check: " .. concat(verdicts, "; ") .. ".")
