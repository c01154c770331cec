-- Counts the records of valgrind memcheck logs and says which are ours.
--
--   lua5.4 tools/valgrind-report.lua MODULE_PATH LOG...
--
-- A record is an error ("Invalid read of size 4", "Conditional jump ...",
-- "Syscall param ...") or a leak ("N bytes in M blocks are definitely lost
-- in loss record ..."), with its stack. It is ours when a frame is in
-- MODULE_PATH or names a file of src/. Definite leaks and errors fail the
-- run wherever they come from (an unsuppressed foreign one has to be looked
-- at); "possibly lost" leaks are listed and counted, not failed.
local module = assert(arg[1], "usage: valgrind-report.lua MODULE_PATH LOG...")
local root = module:match("^(.*)/build/") or "."
local src_dir = root .. "/src/"
local src_files = {}
do
  local p = io.popen("ls -1 '" .. src_dir .. "' 2>/dev/null")
  for name in p:lines() do src_files[name] = true end
  p:close()
end

local function is_ours(lines)
  for _, line in ipairs(lines) do
    if line:find(module, 1, true) or line:find(src_dir, 1, true) then return true end
    -- valgrind.sh passes --fullpath-after=, so our frames read
    -- "(/path/to/repo/src/http.c:95)"; a bare "(http.c:95)" (another
    -- valgrind invocation) counts too, unless the frame is in /usr.
    local file = line:match("%(([%w_]+%.[ch]):%d+%)$")
    if file and src_files[file] and not line:find("/usr/", 1, true) then return true end
  end
  return false
end

local records = {}
local summaries = {}
for i = 2, #arg do
  local f = io.open(arg[i], "rb")
  if f then
    local current
    for raw in f:lines() do
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
          current = { kind = line:match("are (%a+) lost") .. " lost", lines = { line }, file = arg[i] }
        elseif line:match("^Invalid ") or line:match("^Conditional jump") or line:match("^Use of uninitialised")
            or line:match("^Syscall param") or line:match("^Mismatched free") or line:match("^Source and destination overlap")
            or line:match("^Argument .* of function") or line:match("^Jump to the invalid") then
          current = { kind = "error", lines = { line }, file = arg[i] }
        elseif line:match("^ERROR SUMMARY:") or line:match("definitely lost:") then
          summaries[#summaries + 1] = arg[i]:match("[^/]+$") .. ": " .. line
        end
      end
    end
    if current then records[#records + 1] = current end
    f:close()
  end
end

local ours, foreign_fail, possible = {}, {}, {}
for _, r in ipairs(records) do
  if is_ours(r.lines) then
    if r.kind == "possibly lost" then possible[#possible + 1] = r else ours[#ours + 1] = r end
  elseif r.kind == "error" or r.kind == "definitely lost" then
    foreign_fail[#foreign_fail + 1] = r
  elseif r.kind == "possibly lost" then
    possible[#possible + 1] = r
  end
end

local function show(title, list)
  if #list == 0 then return end
  print(("valgrind: %s (%d):"):format(title, #list))
  for i, r in ipairs(list) do
    if i > 20 then print("  ...") break end
    print("  [" .. r.kind .. "] " .. r.file)
    for j = 1, math.min(#r.lines, 20) do print("    " .. r.lines[j]) end
  end
end

show("records attributable to src/", ours)
show("unsuppressed foreign errors / definite leaks", foreign_fail)
show("possibly lost blocks (not counted as failures)", possible)
for _, s in ipairs(summaries) do print("valgrind: " .. s) end
local errors, leaks = 0, 0
for _, r in ipairs(ours) do
  if r.kind == "error" then errors = errors + 1 else leaks = leaks + 1 end
end
print(("valgrind: %d error(s) and %d leak record(s) attributable to src/; %d foreign unsuppressed; %d possibly-lost record(s)")
  :format(errors, leaks, #foreign_fail, #possible))
os.exit((#ours == 0 and #foreign_fail == 0) and 0 or 1)
