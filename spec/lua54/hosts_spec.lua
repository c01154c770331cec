-- The host examples run in their real hosts against the mock: LÖVE
-- (examples/love/, headless), Neovim (examples/nvim/stream.lua, headless)
-- and plain luv (examples/luv.lua) under Lua 5.1, Lua 5.4 and LuaJIT. The
-- streamed text is compared exactly. That the host went on while the
-- calls waited is shown by what it counted meanwhile (frames, ticks of a
-- timer) while the mock held each reply back, and that two calls were in
-- flight at once by the mock's peak; never by wall time.
--
-- In spec/lua54/, so it runs once per `make test-all`. That runs Lua 5.4's
-- suite before it builds LuaJIT's module, so setup builds the LuaJIT and
-- Lua 5.1 modules itself (make, a no-op when they are up to date). LÖVE
-- and Neovim missing is a failure: `make deps` installs them.
local mock = require("spec.helpers.mock")
local process = require("spec.helpers.process")
local util = require("spec.helpers.util")

local KEY = "sk-test-hosts-0123456789"
local DELAY_MS = 200          -- each reply held back this long: the hosts run meanwhile
local HOST_TIMEOUT = 15       -- seconds before a hung host is killed (timeout(1)): they take < 1 s

-- The build directory of each runtime the examples run under.
local BUILDS = { luajit = "build/luajit", ["lua5.1"] = "build/lua5.1", ["lua5.4"] = "build" }

local function cwd()
  local output, ok = process.run("pwd")
  assert(ok, output)
  return (output:gsub("%s+$", ""))
end

-- The hosts load the plain builds in processes of their own: under a
-- sanitizer or valgrind, which instrument only this process, these specs
-- would only take time.
local instrumented = process.instrumented() and "host specs do not run under a sanitizer or valgrind"

describe("host examples", function()
  if instrumented then
    pending(instrumented)
    return
  end
  local server, root, home

  setup(function()
    for _, binary in ipairs { "love", "nvim" } do
      local _, found = process.run("command -v " .. binary)
      assert(found, binary .. " is not installed: `make deps` installs it (apt-get install love neovim)")
    end
    for _, runtime in ipairs { "luajit", "lua5.1" } do
      local ok, log = util.make("all", runtime)
      assert(ok, "make LUA=" .. runtime .. " failed:\n" .. log)
    end
    root = cwd()
    home = process.temp_dir()
    server = mock.start { api_key = KEY }
  end)
  teardown(function()
    if server then server:stop() end
    if home then process.remove_dir(home) end
  end)
  before_each(function() server:reset() end)

  -- Runs a host's command line as a user would from a shell in the
  -- repository: no display, a HOME of its own (or none), the module found
  -- through LUA_PATH and LUA_CPATH, the mock as the API. Returns stdout,
  -- the exit status and stderr.
  local function run(runtime, command, environment)
    local out, err = os.tmpname(), os.tmpname()
    -- Not the sanitizer's preload or module path of `make asan`: these
    -- hosts load the plain builds.
    local parts = { "env -u DISPLAY -u WAYLAND_DISPLAY -u LD_PRELOAD -u LUA_CPATH_5_4 -u LUA_INIT",
      "-u OPENAI_ORG_ID -u OPENAI_PROJECT_ID -u OPENAI_CUSTOM_HEADERS -u OPENAI_MODEL" }
    local env = {
      HOME = home,
      OPENAI_API_KEY = KEY,
      OPENAI_BASE_URL = server.base_url,
      LUA_PATH = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;",
      LUA_CPATH = root .. "/" .. BUILDS[runtime] .. "/?.so;;",
    }
    for name, value in pairs(environment or {}) do env[name] = value end
    -- env(1) takes its -u options before the assignments.
    for name, value in pairs(env) do
      if not value then table.insert(parts, 2, "-u " .. name) end
    end
    for name, value in pairs(env) do
      if value then parts[#parts + 1] = name .. "=" .. process.shell_quote(value) end
    end
    parts[#parts + 1] = ("timeout -k 5 %d %s </dev/null >%s 2>%s"):format(HOST_TIMEOUT, command,
      process.shell_quote(out), process.shell_quote(err))
    local _, code = process.capture(table.concat(parts, " "))
    local stdout, stderr = util.read_file(out), util.read_file(err)
    if code == 124 or code == 137 then -- timeout(1)'s statuses
      stderr = ("killed after %d s: the host never finished\n"):format(HOST_TIMEOUT) .. stderr
    end
    os.remove(out)
    os.remove(err)
    return stdout, code, stderr
  end

  -- Holds back the next `n` replies; they stay normal otherwise.
  local function hold_back(n)
    local list = {}
    for i = 1, n do list[i] = { delay_ms = DELAY_MS, passthrough = true } end
    server:script(list)
  end

  -- The text of `count` chunks as the mock streams them with X-Mock-Stream-Chunks.
  local function tokens(count)
    local parts = {}
    for i = 1, count do parts[i] = "tok" .. i .. " " end
    return table.concat(parts)
  end

  -- Splits off the summary line the examples end with and returns the
  -- rest and the count it names (nil if the line is not there).
  local function summary(stdout, pattern)
    local rest, count = stdout:match("^(.*)" .. pattern .. "\n$")
    return rest, tonumber(count)
  end

  local LOVE = "love " .. "examples/love"
  local NVIM = 'nvim --headless -u NONE -i NONE -n -c "luafile examples/nvim/stream.lua"'

  it("LÖVE, headless and without HOME, streams a reply through openai.poll(0) in love.update", function()
    hold_back(1)
    local stdout, code, stderr = run("luajit", LOVE, { HOME = false, OPENAI_CUSTOM_HEADERS = "X-Mock-Stream-Chunks: 40" })
    assert.are.equal(0, code, stderr)
    local text, frames = summary(stdout, "\n%-%- (%d+) frames ran while the reply streamed")
    assert.are.equal(tokens(40), text)
    assert.is_true(frames > 0, stdout)
    local requests = server:requests()
    assert.are.equal(1, #requests)
    assert.are.equal("/v1/chat/completions", requests[1].path)
  end)

  it("Neovim streams two replies at once into a buffer from vim.loop; its timer ticks meanwhile", function()
    hold_back(2)
    local stdout, code, stderr = run("luajit", NVIM)
    assert.are.equal(0, code, stderr)
    local text, ticks = summary(stdout, "%-%- 2 replies; (%d+) ticks of the editor's timer while they streamed")
    assert.are.equal("> Name three colours.\nEcho: Name three colours.\n\n"
      .. "> Name three fruits.\nEcho: Name three fruits.\n", text)
    assert.is_true(ticks > 0, stdout)
    local _, peak = server:in_flight()
    assert.are.equal(2, peak)
  end)

  for _, runtime in ipairs { "lua5.1", "lua5.4", "luajit" } do
    it("luv under " .. runtime .. " streams two replies at once; its timer ticks meanwhile", function()
      hold_back(2)
      local stdout, code, stderr = run(runtime, runtime .. " examples/luv.lua 'one two three' 'four five'")
      assert.are.equal(0, code, stderr)
      local text, ticks = summary(stdout, "%-%- 2 replies; (%d+) ticks of the timer while they streamed")
      assert.are.equal("[1] Echo: one two three\n[2] Echo: four five\n", text)
      assert.is_true(ticks > 0, stdout)
      local _, peak = server:in_flight()
      assert.are.equal(2, peak)
    end)
  end

  it("the README's excerpts of the host examples are the examples' own lines", function()
    -- Whole-line comments aside: the excerpts leave some out.
    local function code(text) return (text:gsub("\n[ ]*%-%-[^\n]*", "")) end
    local section = util.read_file("README.md"):match("\n### In a host's loop.-\n## ")
    assert.truthy(section, "README.md: no section \"In a host's loop\"")
    local sources = code("\n" .. util.read_file("examples/love/main.lua") .. "\n" .. util.read_file("examples/luv.lua"))
    local blocks = 0
    for block in section:gmatch("```lua\n(.-)```") do
      blocks = blocks + 1
      assert.truthy(sources:find(code("\n" .. block), 1, true), "not in the examples:\n" .. block)
    end
    assert.are.equal(2, blocks)
  end)

  it("each host exits with status 1 and the error on stderr when the call fails", function()
    local rejected = "AuthenticationError: 401 Incorrect API key provided"
    for _, case in ipairs {
      { "luajit", LOVE }, { "luajit", NVIM }, { "lua5.1", "lua5.1 examples/luv.lua" },
    } do
      local _, code, stderr = run(case[1], case[2], { OPENAI_API_KEY = "sk-wrong" })
      assert.are.equal(1, code, case[2] .. ": " .. stderr)
      assert.truthy(stderr:find(rejected, 1, true), case[2] .. ": " .. stderr)
    end
  end)

  it("Neovim exits with status 1 when the script fails before any call (no API key)", function()
    local _, code, stderr = run("luajit", NVIM, { OPENAI_API_KEY = false })
    assert.are.equal(1, code, stderr)
    assert.truthy(stderr:find("openai: missing API key", 1, true), stderr)
  end)
end)
