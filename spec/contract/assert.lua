-- The checks' assert: luassert (what busted's assert is); a case file
-- loaded inside nginx only runs its call, never its checks.
local ok, luassert = pcall(require, "luassert")
return ok and luassert or assert
