-- Rounds of calls during which a finalizer closes the client, or makes
-- another call on it, for spec/finalizer_spec.lua and `make valgrind`. It
-- runs in its own small process: with a small heap the collector finishes
-- its cycles (and so runs finalizers) while a call converts its response.
--
--   lua5.4 spec/finalizer/rounds.lua SCENARIO BASE_URL API_KEY ROUNDS
--   (or LUA_CPATH='build/luajit/?.so;;' luajit spec/finalizer/rounds.lua ...)
--
-- SCENARIO: close | nested (BASE_URL serves GET /chat/completions/<id> from
-- the files of spec/finalizer/fixture.lua) | stream (BASE_URL streams 400
-- events {"n": 1..400} as the hostile server's flood mode does). Prints
-- one line per round, then
-- "rounds N ok N inside M": M rounds had the finalizer run inside the C
-- core (the Connection's request or stream, a stream's read, the JSON
-- decoder). Exits 1 at the first wrong result.
package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path
-- Lua 5.4's module from build/, unless the environment names one (the
-- specs give the runtime's, make asan its instrumented build).
if not (os.getenv("LUA_CPATH_5_4") or os.getenv("LUA_CPATH")) then package.cpath = "build/?.so;" .. package.cpath end
local openai = require("openai")
local fixture = require("spec.finalizer.fixture")
local util = require("spec.helpers.util")

local scenario, base_url, api_key, rounds = arg[1], arg[2], arg[3], tonumber(arg[4])
local BIG_TEXT = fixture.big_text()
local GOLDEN_TEXT = openai.json.encode(openai.json.decode(fixture.golden_text()))

local function fail(round, why)
  io.write("round ", round, ": WRONG: ", tostring(why), "\n")
  os.exit(1)
end

-- Live tables the collector must mark before it can finalize anything: the
-- more there are, the later in a call the finalizer runs. Each round has
-- its own amount, so the rounds hit different points of the call.
local ballast = {}
local function set_ballast(round)
  ballast = {}
  for i = 1, round * 15000 do ballast[i] = { i } end
end

-- The C functions of openai.core a call runs in (the Connection's request
-- and stream, a Stream's read, the JSON decoder a stream's events go
-- through): a finalizer that runs while one of them is on the stack runs
-- inside the C core. Found by value, not by name: the runtimes name a
-- tail-called C function differently in a traceback.
local CORE_FUNCTIONS = { [require("openai.core").json_decode] = "json_decode" }
do
  local registry = debug.getregistry()
  for _, mt_name in ipairs { "openai.Connection", "openai.Stream" } do
    local mt = assert(registry[mt_name], mt_name)
    local methods = type(mt.__index) == "table" and mt.__index or mt
    for _, name in ipairs { "request", "stream", "read" } do
      if methods[name] then CORE_FUNCTIONS[methods[name]] = name end
    end
  end
end

local function in_core()
  local level = 2
  while true do
    local info = debug.getinfo(level, "f")
    if info == nil then return false end
    if CORE_FUNCTIONS[info.func] then return true end
    level = level + 1
  end
end

-- The collector's pause and step multiplier: eager (a new cycle as soon as
-- one ends, at a pace that finishes cycles within a call; the older
-- collectors count their multiplier differently and need 400 for it), and
-- the runtime's default.
local EAGER = util.runtime == "lua5.4" and { 100, 100 } or { 100, 400 }
local DEFAULT = util.runtime == "lua5.4" and { 200, 100 } or { 200, 200 }

-- Runs call() with a garbage object whose finalizer runs on_gc(), the
-- collector running almost continuously. Returns pcall's results, the
-- finalizer's traceback when it ran during the call, and whether it ran
-- inside the C core (nil when not during the call).
local current_round = 0
local function with_finalizer(on_gc, call)
  local ran, inside, calling = nil, nil, false
  set_ballast(current_round)
  util.collector(EAGER[1], EAGER[2]) -- before the collection that sets the next threshold
  collectgarbage("collect")
  do
    util.garbage(function()
      if calling then ran, inside = debug.traceback(), in_core() end
      on_gc()
    end)
  end
  calling = true
  local results = util.pack(pcall(call))
  calling = false
  util.collector(DEFAULT[1], DEFAULT[2])
  collectgarbage("collect")
  return results, ran, inside
end

local function new_client()
  return openai.new { api_key = api_key, base_url = base_url, max_retries = 0 }
end

local scenarios = {}

-- The finalizer closes the client: the call has its exact result, or (when
-- the close came before the request was sent) a clean abort.
local scribble -- memory a finalizer fills, which would reuse freed buffers
function scenarios.close(round)
  local client = new_client()
  local results, _, inside = with_finalizer(function()
    client:close()
    scribble = string.rep("\0", 2 * 1024 * 1024 - 64)
  end, function()
    return client.chat.completions.retrieve("chatcmpl-big")
  end)
  local ok, cc, err = results[1], results[2], results[3]
  if ok and cc ~= nil then
    if openai.json.encode(cc) ~= BIG_TEXT then fail(round, "wrong result") end
    if cc._request_id ~= "req_chatcmpl-big" then fail(round, "wrong request id " .. tostring(cc._request_id)) end
  elseif inside then
    fail(round, ok and err or cc)
  elseif ok and err.name ~= "APIUserAbortError" then
    fail(round, err)
  elseif not ok and not tostring(cc):find("attempt to use a closed client", 1, true) then
    fail(round, cc)
  end
  local raised = not pcall(client.chat.completions.retrieve, "chatcmpl-abc123")
  if not raised then fail(round, "the client still works after close()") end
  return inside
end

-- The finalizer retrieves another completion on the same client.
local shared
function scenarios.nested(round)
  shared = shared or new_client()
  local nested
  local results, ran, inside = with_finalizer(function()
    nested = util.pack(shared.chat.completions.retrieve("chatcmpl-abc123"))
  end, function()
    return shared.chat.completions.retrieve("chatcmpl-big")
  end)
  if not results[1] or results[3] ~= nil then fail(round, results[2] or results[3]) end
  if openai.json.encode(results[2]) ~= BIG_TEXT then fail(round, "wrong result") end
  if ran then
    if nested[1] == nil then fail(round, nested[2]) end
    if openai.json.encode(nested[1]) ~= GOLDEN_TEXT then fail(round, "wrong nested result") end
  end
  return inside
end

-- The finalizer reads another stream of the client, then closes the
-- client, while a stream is read: whole events in order, then a clean
-- abort (or the clean end).
function scenarios.stream(round)
  local client = new_client()
  local params = { model = "m", stream = true, messages = {} }
  local a = assert(client.chat.completions.create(params))
  local b = assert(client.chat.completions.create(params))
  local seen = 0
  local results, _, inside = with_finalizer(function()
    b:next()
    client:close()
    scribble = string.rep("\0", 64 * 1024)
  end, function()
    while true do
      local chunk, err = a:next()
      if chunk == nil then return err end
      if chunk.n ~= seen + 1 then fail(round, "event " .. tostring(chunk.n) .. " after " .. seen) end
      seen = chunk.n
    end
  end)
  if not results[1] then fail(round, results[2]) end
  local err = results[2]
  if err == nil then
    if seen ~= 400 then fail(round, "the stream ended after event " .. seen) end
  elseif err.name ~= "APIUserAbortError" then
    fail(round, err)
  end
  return inside
end

local inside = 0
for round = 1, rounds do
  current_round = round
  local was_inside = scenarios[scenario](round)
  io.write("round ", round, ": ok", was_inside and " inside" or "", was_inside == nil and " (no finalizer during the call)" or "", "\n")
  if was_inside then inside = inside + 1 end
end
io.write("rounds ", rounds, " ok ", rounds, " inside ", inside, "\n")
