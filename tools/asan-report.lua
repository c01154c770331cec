-- Sorts the sanitizer logs of `make asan` / `make tsan` into reports that
-- are ours and reports that are not.
--
--   lua5.4 tools/asan-report.lua LOG_DIR MODULE_PATH [LABEL]
--
-- LOG_DIR holds the files the runtimes wrote through log_path (asan.<pid>,
-- tsan.<pid>). A report is one AddressSanitizer error, one LeakSanitizer
-- "Direct/Indirect leak" record, one UBSan "runtime error", or one
-- ThreadSanitizer warning. It is ours when any of its lines names our
-- module or a file in src/. (LSan runs at exit, after lua_close() has
-- dlclose()d the module, so a leak of ours can show "<unknown module>"
-- frames instead: such a report is not counted as ours, but it still fails
-- the run, as every unsuppressed report does.)
--
-- Exit status 1 when a report is ours, and also for any other report left
-- unsuppressed: a memory error or race in foreign code can be caused by us,
-- and a leak stack taken with the fast unwinder can stop inside libcurl
-- before it reaches our frames. A foreign leak belongs in the suppressions
-- file only once it is shown not to be ours.
local dir, module, label = arg[1], arg[2], arg[3] or "asan"
assert(dir and module, "usage: asan-report.lua LOG_DIR MODULE_PATH [LABEL]")

local root = module:match("^(.*)/build/") or "."
local src_dir = root .. "/src/"

local function list_logs()
  local files = {}
  local p = assert(io.popen("ls -1 '" .. dir:gsub("'", "'\\''") .. "' 2>/dev/null"))
  for name in p:lines() do files[#files + 1] = dir .. "/" .. name end
  p:close()
  table.sort(files)
  return files
end

local function plain_find(text, needle)
  return text:find(needle, 1, true) ~= nil
end

local function is_ours(lines)
  for _, line in ipairs(lines) do
    if plain_find(line, module) or plain_find(line, src_dir)
        or line:match("[%s(]src/[%w_]+%.[ch]:%d") then
      return true
    end
  end
  return false
end

-- Splits one log file into reports: { kind =, lines = {...} }.
local function parse(path)
  local f = io.open(path, "rb")
  if not f then return {} end
  local lines = {}
  for line in f:lines() do lines[#lines + 1] = line end
  f:close()
  local reports, current = {}, nil
  local function close()
    if current then reports[#reports + 1] = current end
    current = nil
  end
  for _, line in ipairs(lines) do
    local leak = line:match("^(%a+) leak of %d+ byte")
    if leak then
      close()
      current = { kind = leak:lower() .. " leak", lines = { line } }
    elseif line:match("ERROR: AddressSanitizer") or line:match("ERROR: LeakSanitizer: [^d]") then
      close()
      current = { kind = "memory error", lines = { line } }
    elseif line:match("Sanitizer has encountered a fatal error") or line:match("Sanitizer CHECK failed") then
      close() -- the sanitizer itself gave up: nothing after it was checked
      current = { kind = "sanitizer failure", lines = { line } }
    elseif line:match("runtime error:") then
      close()
      current = { kind = "undefined behaviour", lines = { line } }
    elseif line:match("^WARNING: ThreadSanitizer") then
      close()
      current = { kind = "data race/thread error", lines = { line } }
    elseif line:match("ERROR: LeakSanitizer: detected memory leaks") or line:match("^SUMMARY:")
        or line:match("^=+$") then
      if current and current.kind ~= "memory error" and current.kind ~= "data race/thread error" then close() end
      if line:match("^SUMMARY:") then close() end
    elseif current then
      current.lines[#current.lines + 1] = line
    end
  end
  close()
  for _, r in ipairs(reports) do r.file = path end
  return reports
end

local ours, foreign_errors, foreign_leaks = {}, {}, {}
local files = list_logs()
for _, path in ipairs(files) do
  for _, r in ipairs(parse(path)) do
    if is_ours(r.lines) then
      ours[#ours + 1] = r
    elseif r.kind:match("leak") then
      foreign_leaks[#foreign_leaks + 1] = r
    else
      foreign_errors[#foreign_errors + 1] = r
    end
  end
end

local function show(title, list, max_lines)
  if #list == 0 then return end
  print(("%s: %s (%d):"):format(label, title, #list))
  for i, r in ipairs(list) do
    if i > 20 then
      print("  ...")
      break
    end
    print(("  [%s] %s"):format(r.kind, r.file))
    for j = 1, math.min(#r.lines, max_lines) do print("    " .. r.lines[j]) end
  end
end

show("reports attributable to the project", ours, 24)
show("other errors (memory/UB/race outside our frames)", foreign_errors, 16)
show("leaks without our frames (unsuppressed: fail until shown foreign and suppressed)", foreign_leaks, 16)
local counts = {}
for _, r in ipairs(ours) do counts[r.kind] = (counts[r.kind] or 0) + 1 end
local parts = {}
for kind, n in pairs(counts) do parts[#parts + 1] = n .. " " .. kind end
table.sort(parts)
print(("%s: %d log file(s); %d report(s) attributable to the project%s; %d other error(s); %d foreign leak record(s)")
  :format(label, #files, #ours, #parts > 0 and " (" .. table.concat(parts, ", ") .. ")" or "",
          #foreign_errors, #foreign_leaks))
os.exit((#ours == 0 and #foreign_errors == 0 and #foreign_leaks == 0) and 0 or 1)
