-- The two install routes give the same LuaRocks tree, and it works.
local util = require("spec.helpers.util")

local function capture(command)
  local pipe = assert(io.popen(command .. " 2>&1"))
  local output = pipe:read("a")
  local ok = pipe:close()
  return ok, output
end

local function tree_files(dir)
  local ok, output = capture("cd " .. util.shell_quote(dir) .. " && find share lib/lua -type f | sort")
  assert(ok, output)
  return output
end

local function try_tree(dir)
  local code_text = ([[
    package.path = DIR .. "/share/lua/5.4/?.lua;" .. DIR .. "/share/lua/5.4/?/init.lua"
    package.cpath = DIR .. "/lib/lua/5.4/?.so"
    local openai = require("openai")
    print(package.searchpath("openai.core", package.cpath) ~= nil, openai.json.encode(openai.json.decode('{"seed":4944116822809979520}')))
  ]]):gsub("DIR", ("%q"):format(dir))
  return util.run_lua(code_text, {})
end

local EXPECTED = table.concat({
  "lib/lua/5.4/openai/core.so",
  "share/lua/5.4/openai/client.lua",
  "share/lua/5.4/openai/errors.lua",
  "share/lua/5.4/openai/init.lua",
  "share/lua/5.4/openai/object.lua",
  "share/lua/5.4/openai/page.lua",
  "share/lua/5.4/openai/resources.lua",
  "share/lua/5.4/openai/stream.lua",
  "share/lua/5.4/openai/url.lua",
}, "\n") .. "\n"

describe("installation", function()
  it("installs the LuaRocks tree layout with make install PREFIX=", function()
    local dir = os.tmpname()
    os.remove(dir)
    local ok, output = capture("make --no-print-directory install PREFIX=" .. util.shell_quote(dir))
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
      .. "luarocks --lua-version=5.4 make --tree %s openai-scm-1.rockspec"):format(
      util.shell_quote(src), util.shell_quote(src), util.shell_quote(src), util.shell_quote(dir)))
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
