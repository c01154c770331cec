-- The timed loop of the HTTP clients of `make bench` (Lua 5.1 and 5.4):
-- calls call() again and again until SECONDS of wall time have passed, then
-- prints "RESULT <calls> <wall seconds> <process CPU seconds>".
local gettime = require("socket").gettime
local clock = os.clock

return function(call, seconds)
  local calls, wall = 0, 0
  local wall0, cpu0 = gettime(), clock()
  repeat
    call()
    calls = calls + 1
    wall = gettime() - wall0
  until wall >= seconds
  print(("RESULT %d %.6f %.6f"):format(calls, wall, clock() - cpu0))
end
