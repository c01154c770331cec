-- Sorts the logs of `make asan`, `make tsan` or `make valgrind` into reports
-- that are ours and reports that are not, and prints their counts.
--
--   lua5.4 tools/sanitizer-report.lua asan|tsan|valgrind MODULE_PATH LOG_DIR
--
-- LOG_DIR holds one log per process (tools/sanitize.sh: asan.<pid>,
-- tsan.<pid>, memcheck.<pid>.log). A report is ours when any of its lines
-- names MODULE_PATH or a file of src/.
--
-- asan, tsan: a report is one AddressSanitizer error, one LeakSanitizer
--   "Direct/Indirect leak" record, one UBSan "runtime error" or one
--   ThreadSanitizer warning. Every one fails the run, ours or not: a memory
--   error or race in foreign code can be caused by us, and a leak stack
--   taken with the fast unwinder can stop inside libcurl before it reaches
--   our frames. (LSan runs at exit, after lua_close() has dlclose()d the
--   module, so a leak of ours can show "<unknown module>" frames instead.)
--   A foreign leak belongs in the suppressions file only once it is shown
--   not to be ours.
-- valgrind: a record is a memcheck error ("Invalid read of size 4",
--   "Conditional jump ...", "Syscall param ...") or a leak ("N bytes in M
--   blocks are definitely lost in loss record ..."), with its stack. Errors
--   and definite leaks fail the run wherever they come from; "possibly
--   lost" leaks are listed and counted, not failed.
--
-- The last line is the count: "asan: N log file(s); ...",
-- "tsan: N log file(s); ..." or "valgrind: N error(s) and ...".
-- Exit status 1 when the run fails as above.
local usage = "usage: sanitizer-report.lua asan|tsan|valgrind MODULE_PATH LOG_DIR"
local mode, module, dir = arg[1], arg[2], arg[3]
assert(mode == "asan" or mode == "tsan" or mode == "valgrind", usage)
assert(module and dir, usage)

local root = module:match("^(.*)/build/") or "."
local src_dir = root .. "/src/"

local function ls(command)
  local names = {}
  local p = assert(io.popen(command))
  for name in p:lines() do names[#names + 1] = name end
  p:close()
  table.sort(names)
  return names
end

local function quote(path)
  return "'" .. path:gsub("'", "'\\''") .. "'"
end

-- The base names of our C files, in src/ and below it.
local src_files = {}
for _, path in ipairs(ls("find " .. quote(src_dir) .. " -name '*.[ch]' 2>/dev/null")) do
  src_files[path:match("[^/]+$")] = true
end

local function is_ours(lines)
  for _, line in ipairs(lines) do
    if line:find(module, 1, true) or line:find(src_dir, 1, true)
        or line:match("[%s(]src/[%w_/]+%.[ch]:%d") then
      return true
    end
    -- valgrind runs with --fullpath-after=, so our frames read
    -- "(/path/to/repo/src/http.c:95)"; a bare "(http.c:95)" (another
    -- valgrind invocation) counts too, unless the frame is in /usr.
    local file = line:match("%(([%w_]+%.[ch]):%d+%)$")
    if file and src_files[file] and not line:find("/usr/", 1, true) then return true end
  end
  return false
end

local function read_lines(path)
  local f = io.open(path, "rb")
  if not f then return {} end
  local lines = {}
  for line in f:lines() do lines[#lines + 1] = line end
  f:close()
  return lines
end

-- A sanitizer log split into reports: { kind =, lines = {...} }.
local function parse_sanitizer(lines)
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
  return reports
end

-- A memcheck log split into records ({ kind =, lines = {...} }), and its
-- summary lines.
local function parse_valgrind(lines)
  local records, summaries, current = {}, {}, nil
  for _, raw in ipairs(lines) do
    local line = raw:gsub("^==%d+== ?", "")
    if raw:match("^==%d+==") then
      if line == "" then
        if current then records[#records + 1] = current end
        current = nil
      elseif current and (line:match("^%s+at ") or line:match("^%s+by ") or line:match("^%s+Address ")
          or line:match("^%s+Block ") or line:match("^%s+Uninitialised")) then
        current.lines[#current.lines + 1] = line
      elseif line:match("are definitely lost") or line:match("are indirectly lost")
          or line:match("are possibly lost") then
        current = { kind = line:match("are (%a+) lost") .. " lost", lines = { line } }
      elseif line:match("^Invalid ") or line:match("^Conditional jump") or line:match("^Use of uninitialised")
          or line:match("^Syscall param") or line:match("^Mismatched free") or line:match("^Source and destination overlap")
          or line:match("^Argument .* of function") or line:match("^Jump to the invalid") then
        current = { kind = "error", lines = { line } }
      elseif line:match("^ERROR SUMMARY:") or line:match("definitely lost:") then
        summaries[#summaries + 1] = line
      end
    end
  end
  if current then records[#records + 1] = current end
  return records, summaries
end

-- list: reports with kind, file and lines; prints at most 20 of them.
local function show(title, list, max_lines)
  if #list == 0 then return end
  print(("%s: %s (%d):"):format(mode, title, #list))
  for i, r in ipairs(list) do
    if i > 20 then
      print("  ...")
      break
    end
    print(("  [%s] %s"):format(r.kind, r.file))
    for j = 1, math.min(#r.lines, max_lines) do print("    " .. r.lines[j]) end
  end
end

local files = {}
for _, name in ipairs(ls("ls -1 " .. quote(dir) .. " 2>/dev/null")) do files[#files + 1] = dir .. "/" .. name end

-- Every report of every log, with its file and whether it is ours; and the
-- summary lines of each memcheck log.
local parse = mode == "valgrind" and parse_valgrind or parse_sanitizer
local reports, summaries = {}, {}
for _, path in ipairs(files) do
  local found, found_summaries = parse(read_lines(path))
  for _, r in ipairs(found) do
    r.file, r.ours = path, is_ours(r.lines)
    reports[#reports + 1] = r
  end
  for _, s in ipairs(found_summaries or {}) do summaries[#summaries + 1] = path:match("[^/]+$") .. ": " .. s end
end

local function select(keep)
  local list = {}
  for _, r in ipairs(reports) do
    if keep(r) then list[#list + 1] = r end
  end
  return list
end

local failed
if mode == "valgrind" then
  local ours = select(function(r) return r.ours and r.kind ~= "possibly lost" end)
  local foreign = select(function(r) return not r.ours and (r.kind == "error" or r.kind == "definitely lost") end)
  local possible = select(function(r) return r.kind == "possibly lost" end)
  show("records attributable to src/", ours, 20)
  show("unsuppressed foreign errors / definite leaks", foreign, 20)
  show("possibly lost blocks (not counted as failures)", possible, 20)
  for _, s in ipairs(summaries) do print("valgrind: " .. s) end
  local errors = #select(function(r) return r.ours and r.kind == "error" end)
  print(("valgrind: %d error(s) and %d leak record(s) attributable to src/; %d foreign unsuppressed; %d possibly-lost record(s)")
    :format(errors, #ours - errors, #foreign, #possible))
  failed = #ours > 0 or #foreign > 0
else
  local ours = select(function(r) return r.ours end)
  local foreign_errors = select(function(r) return not r.ours and not r.kind:match("leak") end)
  local foreign_leaks = select(function(r) return not r.ours and r.kind:match("leak") ~= nil end)
  show("reports attributable to the project", ours, 24)
  show("other errors (memory/UB/race outside our frames)", foreign_errors, 16)
  show("leaks without our frames (unsuppressed: fail until shown foreign and suppressed)", foreign_leaks, 16)
  local counts = {}
  for _, r in ipairs(ours) do counts[r.kind] = (counts[r.kind] or 0) + 1 end
  local parts = {}
  for kind, n in pairs(counts) do parts[#parts + 1] = n .. " " .. kind end
  table.sort(parts)
  print(("%s: %d log file(s); %d report(s) attributable to the project%s; %d other error(s); %d foreign leak record(s)")
    :format(mode, #files, #ours, #parts > 0 and " (" .. table.concat(parts, ", ") .. ")" or "",
            #foreign_errors, #foreign_leaks))
  failed = #ours > 0 or #foreign_errors > 0 or #foreign_leaks > 0
end
os.exit(failed and 1 or 0)
