-- What the benchmarks share: medians and figures for the reports' tables
-- (bench/report.lua, bench/concurrency_report.lua), and the process's
-- memory as /proc tells it.
local format, sort = string.format, table.sort

local M = {}

function M.median(list)
  local copy = {}
  for i = 1, #list do copy[i] = list[i] end
  sort(copy)
  local n = #copy
  if n == 0 then return nil end
  if n % 2 == 1 then return copy[(n + 1) // 2] end
  return (copy[n // 2] + copy[n // 2 + 1]) / 2
end

-- A rate or count, to three significant figures or so: 17.8k, 499, 2.5.
function M.count(value)
  if value >= 10000 then return format("%.1fk", value / 1000) end
  if value >= 100 then return format("%.0f", value) end
  return format("%.1f", value)
end

-- The smallest and largest of a list.
function M.range(list)
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(list) do lo, hi = math.min(lo, v), math.max(hi, v) end
  return lo, hi
end

-- The words of each line of a file, as lists.
function M.records(path)
  local records = {}
  for line in io.lines(path) do
    local f = {}
    for word in line:gmatch("%S+") do f[#f + 1] = word end
    records[#records + 1] = f
  end
  return records
end

-- A field of /proc/self/status in kB ("VmRSS", "VmHWM": peak RSS).
function M.status_kb(field)
  for line in io.lines("/proc/self/status") do
    local value = line:match("^" .. field .. ":%s+(%d+) kB")
    if value then return tonumber(value) end
  end
end

return M
