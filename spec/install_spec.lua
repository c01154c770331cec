-- The two install routes give the same LuaRocks tree, and it works, for the
-- runtime under test (make LUA=..., luarocks --lua-version=...; LuaJIT's
-- tree is the 5.1 one, and luarocks builds it with Lua 5.1's headers: the
-- same module loads in both).
local util = require("spec.helpers.util")
local process = require("spec.helpers.process")

-- ok, output: the order this spec reads them in.
local function capture(command)
  local output, ok = process.run(command)
  return ok, output
end

local function tree_files(dir)
  local ok, output = capture("cd " .. util.shell_quote(dir) .. " && find share lib/lua -type f | sort")
  assert(ok, output)
  return output
end

local V = util.lua_version

local function try_tree(dir)
  local code_text = ([[
    package.path = DIR .. "/share/lua/V/?.lua;" .. DIR .. "/share/lua/V/?/init.lua"
    package.cpath = DIR .. "/lib/lua/V/?.so"
    local openai = require("openai")
    print(io.open(DIR .. "/lib/lua/V/openai/core.so") ~= nil, openai.json.encode(openai.json.decode('{"seed":4944116822809979520}')))
  ]]):gsub("DIR", ("%q"):format(dir)):gsub("/V/", "/" .. V .. "/")
  return util.run_lua(code_text, {})
end

local EXPECTED = table.concat({
  "lib/lua/V/openai/core.so",
  "share/lua/V/openai/client.lua",
  "share/lua/V/openai/compat.lua",
  "share/lua/V/openai/errors.lua",
  "share/lua/V/openai/init.lua",
  "share/lua/V/openai/object.lua",
  "share/lua/V/openai/page.lua",
  "share/lua/V/openai/resources.lua",
  "share/lua/V/openai/stream.lua",
  "share/lua/V/openai/url.lua",
}, "\n"):gsub("/V/", "/" .. V .. "/") .. "\n"

describe("installation", function()
  it("installs the LuaRocks tree layout with make install PREFIX=", function()
    local dir = os.tmpname()
    os.remove(dir)
    local ok, output = capture("make --no-print-directory install LUA=" .. util.runtime .. " PREFIX=" .. util.shell_quote(dir))
    assert(ok, output)
    assert.are.equal(EXPECTED, tree_files(dir))
    local result, code = try_tree(dir)
    assert.are.equal(0, code, result)
    assert.are.equal('true\t{"seed":4944116822809979520}\n', result)
    os.execute("rm -rf " .. util.shell_quote(dir))
  end)

  it("builds the same tree with luarocks make, offline", function()
    local dir = os.tmpname()
    os.remove(dir)
    -- a copy, so luarocks' objects never land in the working tree
    local src = os.tmpname()
    os.remove(src)
    local ok, output = capture(("mkdir -p %s && cp -r src lua openai-scm-1.rockspec %s/ && cd %s && "
      .. "luarocks --lua-version=%s make --tree %s openai-scm-1.rockspec"):format(
      util.shell_quote(src), util.shell_quote(src), util.shell_quote(src), V, util.shell_quote(dir)))
    assert(ok, output)
    assert.are.equal(EXPECTED, tree_files(dir))
    local result, code = try_tree(dir)
    assert.are.equal(0, code, result)
    assert.are.equal('true\t{"seed":4944116822809979520}\n', result)
    os.execute("rm -rf " .. util.shell_quote(dir) .. " " .. util.shell_quote(src))
  end)

  it("the rockspec names every source file and Lua module", function()
    local rockspec = util.read_file("openai-scm-1.rockspec")
    local ok, listing = capture("ls src/*.c lua/openai/*.lua")
    assert(ok, listing)
    for path in listing:gmatch("[^\n]+") do
      assert.truthy(rockspec:find('"' .. path .. '"', 1, true), path .. " is not in the rockspec")
    end
  end)
end)
