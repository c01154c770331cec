-- Reads busted's TAP output, prints failures with their details and a last
-- line "N passed, M failed[, K skipped]"; exits 1 unless all ran and passed.
--
--   lua5.4 tools/tap-summary.lua FILE.tap    (tools/run-tests.sh, tools/sanitize.sh)
local path = assert(arg[1], "usage: tap-summary.lua FILE")
local passed, failed, skipped, planned = 0, 0, 0, nil
local in_failure = false
for line in io.lines(path) do
  if line:match("^ok ") then
    in_failure = false
    if line:match("# SKIP") then skipped = skipped + 1 else passed = passed + 1 end
  elseif line:match("^not ok ") then
    failed = failed + 1
    in_failure = true
    print(line)
  elseif line:match("^1%.%.%d+") then
    planned = tonumber(line:match("^1%.%.(%d+)"))
  elseif in_failure then
    print(line)
  elseif not line:match("^#") and line ~= "" then
    print(line) -- anything busted printed outside TAP (load errors)
  end
end
local ran = passed + failed + skipped
if planned == nil or ran ~= planned or ran == 0 then
  failed = failed + math.max(1, (planned or 0) - ran)
  print("busted did not run every planned test")
end
print(("%d passed, %d failed%s"):format(passed, failed, skipped > 0 and (", %d skipped"):format(skipped) or ""))
os.exit(failed == 0 and 0 or 1)
